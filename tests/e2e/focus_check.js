() => {
  // Evaluated by tests/e2e/conftest.py after each Tab: "" when the focused control shows its focus.
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2;
  const ring = style.boxShadow && style.boxShadow !== "none";
  return outline || ring ? "" : `<${el.tagName.toLowerCase()}> "${el.textContent.trim().slice(0, 40)}" shows no focus`;
}
