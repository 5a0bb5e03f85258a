"""axe-core (tests/vendor/axe-core, from npm) run inside a page: WCAG 2.1 A and AA rules, and no violation whose
impact is serious or critical may remain. check_phone_page runs it on every page the journeys and the tour check;
test_a11y.py runs it on every page of pages.py, in both languages and both modes."""

from __future__ import annotations

from pathlib import Path

AXE_SOURCE = (Path(__file__).resolve().parents[1] / "vendor" / "axe-core" / "axe.min.js").read_text()
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = ("serious", "critical")

# Evaluated through the DevTools protocol, which the page's Content-Security-Policy does not govern: the app's
# CSP (rightly) refuses inline scripts, and the page is checked exactly as it is served.
_RUN = """async ([tags, blocking]) => {
  const result = await axe.run(document, {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]});
  return result.violations.filter((v) => blocking.includes(v.impact)).map((v) =>
    `${v.impact} ${v.id}: ${v.help}\\n` + v.nodes.slice(0, 5).map((n) =>
      `    ${n.target.join(" ")}: ${n.failureSummary.replace(/\\s+/g, " ").slice(0, 200)}`).join("\\n"));
}"""


def axe_violations(page) -> list[str]:
    """The serious and critical WCAG 2.1 A/AA violations axe finds in the page as it is now."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE_SOURCE + "\n;undefined")
    return page.evaluate(_RUN, [WCAG_TAGS, list(BLOCKING)])


def check_axe(page, name: str = "") -> None:
    problems = axe_violations(page)
    assert not problems, f"axe: {name or page.url} ({page.url}):\n" + "\n".join(problems)
