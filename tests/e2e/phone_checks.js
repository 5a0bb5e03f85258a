(width) => {
  // Evaluated by tests/e2e/conftest.py in each main page; returns what a phone user would trip over.
  const problems = [];
  // Against the phone's width, not innerWidth: a phone browser zooms out to fit a page that is too wide.
  const root = document.documentElement;
  if (root.scrollWidth > width) {
    problems.push(`page scrolls sideways: ${root.scrollWidth}px wide on a ${width}px screen`);
  }
  const visible = (el) => {
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    return box.width > 0 && box.height > 0 && style.visibility !== "hidden" && style.display !== "none";
  };
  const describe = (el) => `<${el.tagName.toLowerCase()}> "${(el.textContent || el.value || el.getAttribute("aria-label") || "").trim().slice(0, 40)}"`;
  const inText = (el) => getComputedStyle(el).display === "inline"
    && el.parentElement.textContent.trim().length > el.textContent.trim().length;
  for (const el of document.querySelectorAll("a[href], button, [role=button], summary, select, textarea, input:not([type=hidden])")) {
    if (!visible(el) || el.closest("details:not([open]) > :not(summary)")) continue;
    let target = el;
    if (el.matches("input[type=checkbox], input[type=radio]")) target = el.closest("label") || el;
    if (el.tagName === "A" && inText(el)) continue;
    const height = target.getBoundingClientRect().height;
    if (height < 43.5) problems.push(`tap target ${describe(el)} is ${height.toFixed(1)}px high`);
  }
  for (const el of document.querySelectorAll("input:not([type=hidden]):not([type=submit]), select, textarea")) {
    const named = el.labels && el.labels.length || el.getAttribute("aria-label") || el.getAttribute("aria-labelledby");
    if (!named) problems.push(`field ${el.name || el.id} has no label`);
  }
  // An id used twice: a label's `for` (or an aria reference) can name only the first.
  const ids = new Map();
  for (const el of document.querySelectorAll("[id]")) ids.set(el.id, (ids.get(el.id) || 0) + 1);
  for (const [id, count] of ids) if (count > 1) problems.push(`id "${id}" is used ${count} times`);
  const parse = (colour) => {
    const m = colour.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const [r, g, b, a] = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    return [r, g, b, a === undefined ? 1 : a];
  };
  const over = (top, bottom) => [0, 1, 2].map((i) => top[i] * top[3] + bottom[i] * (1 - top[3])).concat(1);
  const background = (el) => {
    const layers = [];
    for (let node = el; node && node.nodeType === 1; node = node.parentElement) {
      const colour = parse(getComputedStyle(node).backgroundColor);
      if (colour && colour[3] > 0) layers.push(colour);
      if (colour && colour[3] >= 1) break;
    }
    return layers.reverse().reduce((below, layer) => over(layer, below), [255, 255, 255, 1]);
  };
  const luminance = (c) => {
    const [r, g, b] = c.slice(0, 3).map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!node.textContent.trim() || seen.has(el) || !visible(el)) continue;
    if (el.closest("[disabled], [aria-disabled=true], script, style, svg, template")) continue;
    if (el.closest("details:not([open]) > :not(summary)")) continue;
    seen.add(el);
    const style = getComputedStyle(el);
    const back = background(el);
    const fore = over(parse(style.color), back);
    const opacity = (() => { let o = 1; for (let n = el; n && n.nodeType === 1; n = n.parentElement) o *= Number(getComputedStyle(n).opacity); return o; })();
    const shown = over([...fore.slice(0, 3), opacity], back);
    const [hi, lo] = [luminance(shown), luminance(back)].sort((x, y) => y - x);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) {
      problems.push(`contrast ${ratio.toFixed(2)}:1 for ${describe(el)} (${style.color} on rgb(${back.slice(0, 3).map(Math.round)}))`);
    }
  }
  return problems;
}
