([minText, minTarget]) => {
  // Evaluated by test_a11y.py in 长辈模式: what is smaller than the mode promises. Text: every visible piece of
  // text in the page's header, quick tasks and main part; targets: everything tappable, links inside a sentence
  // excepted (WCAG 2.5.8 exempts them, and they grow with the text).
  const problems = [];
  const visible = (el) => {
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    return box.width > 0 && box.height > 0 && style.visibility !== "hidden" && style.display !== "none"
      && !el.closest("details:not([open]) > :not(summary), .visually-hidden");
  };
  const describe = (el) => `<${el.tagName.toLowerCase()}> "${(el.textContent || el.value || "").trim().slice(0, 30)}"`;
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const seen = new Set();
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!node.textContent.trim() || seen.has(el) || !visible(el) || el.closest("footer, script, style, svg")) continue;
    seen.add(el);
    const size = parseFloat(getComputedStyle(el).fontSize);
    if (size < minText - 0.01) problems.push(`text ${describe(el)} is ${size.toFixed(1)}px`);
  }
  const inText = (el) => getComputedStyle(el).display === "inline"
    && el.parentElement.textContent.trim().length > el.textContent.trim().length;
  for (const el of document.querySelectorAll("a[href], button, [role=button], summary, select, textarea, input:not([type=hidden])")) {
    if (!visible(el) || (el.tagName === "A" && inText(el))) continue;
    const target = el.matches("input[type=checkbox], input[type=radio]") ? (el.closest("label") || el) : el;
    const height = target.getBoundingClientRect().height;
    if (height < minTarget - 0.5) problems.push(`target ${describe(el)} is ${height.toFixed(1)}px high`);
  }
  return problems;
}
