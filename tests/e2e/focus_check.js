(pressed) => {
  // Evaluated by tests/e2e/conftest.py after each Tab (`pressed`: how many so far): "" when the focused control
  // shows its focus.
  // A real indicator is an outline at least 2px wide in a colour that is not transparent, or a box-shadow that can
  // be seen (a colour not fully transparent, some size) and that the control does not wear when unfocused. Pico
  // gives every button, link and summary an invisible `rgba(0, 0, 0, 0) 0px 0px 0px 0px` shadow: that is no ring.
  const el = document.activeElement;
  if (!el || el === document.body || el === document.documentElement) {
    // Past the last control the focus leaves the page, and that is no fault; short of it, a control was skipped
    // or the focus fell back to the page.
    const tabbable = [...document.querySelectorAll(
      "a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]")].filter((c) => {
      const box = c.getBoundingClientRect();
      return !c.disabled && c.tabIndex >= 0 && box.width > 0 && box.height > 0
        && getComputedStyle(c).visibility !== "hidden" && !c.closest("details:not([open]) > :not(summary)");
    });
    if (pressed > tabbable.length) return "";
    return "Tab left the focus on <body>: no control shows where the keyboard is";
  }
  const alpha = (colour) => {
    const m = colour.match(/rgba?\(([^)]+)\)/);
    if (!m) return colour === "transparent" ? 0 : 1;
    const parts = m[1].split(/[ ,/]+/).filter(Boolean);
    return parts.length > 3 ? parseFloat(parts[3]) : 1;
  };
  // A computed box-shadow: "none", or shadows separated by commas outside parentheses, colour first.
  const shadows = (value) => {
    if (!value || value === "none") return [];
    return value.split(/,(?![^(]*\))/).map((shadow) => {
      const colour = (shadow.match(/(rgba?\([^)]*\)|transparent)/) || ["rgb(0, 0, 0)"])[0];
      const lengths = shadow.replace(colour, "").match(/-?[\d.]+px/g) || [];
      return {colour, lengths: lengths.map(parseFloat), text: shadow.trim()};
    });
  };
  const seen = (value) => shadows(value)
    .filter((s) => alpha(s.colour) > 0 && s.lengths.some((n) => n !== 0))
    .map((s) => s.text);
  const style = getComputedStyle(el);
  const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2 && alpha(style.outlineColor) > 0;
  if (outline) return "";
  const focused = seen(style.boxShadow);
  if (focused.length) {
    // The same control unfocused: blur it, read its shadow, and give the focus back (Chromium keeps a focus given
    // back by script :focus-visible after a keyboard move, so the next Tab carries on from here).
    el.blur();
    const unfocused = new Set(seen(getComputedStyle(el).boxShadow));
    el.focus({preventScroll: true});
    if (focused.some((s) => !unfocused.has(s))) return "";
  }
  return `<${el.tagName.toLowerCase()}> "${(el.textContent || el.value || "").trim().slice(0, 40)}" shows no focus`;
}
