"""Issue 19: every page of tests/e2e/pages.py checked by axe-core (WCAG 2.1 A/AA, no serious or critical violation)
at 390 × 844, in Chinese and in English, in the standard mode and in 长辈模式; the list kept complete against the
app's routes; and a page with known violations proving the check can fail."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from flask import url_for
from sqlalchemy import select

from credits.auth.models import User
from credits.extensions import db
from credits.merchants.models import Voucher
from credits.projects import services as projects
from credits.projects.models import Claim
from credits.timeutil import utcnow
from tests.e2e.axe import axe_violations, check_axe
from tests.e2e.conftest import check_phone_page
from tests.e2e.pages import EXCLUDED, PAGES
from tests.e2e.test_journeys import open_site, sign_in
from tests.e2e.test_tour import world  # noqa: F401  (the fixture: the tour's world is the one checked here)

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture says why, and skips or (on CI) fails
    expect = None

FIXTURE = Path(__file__).parent / "fixtures" / "axe_violations.html"


def test_every_get_route_is_a_checked_page_or_excluded_with_a_reason(app):
    listed = {page.endpoint for page in PAGES}
    routes = {rule.endpoint for rule in app.url_map.iter_rules()
              if "GET" in rule.methods and not rule.rule.startswith("/api/")}
    forgotten = routes - listed - set(EXCLUDED)
    assert not forgotten, f"GET routes neither in tests/e2e/pages.py's PAGES nor in its EXCLUDED: {sorted(forgotten)}"
    stale = (listed | set(EXCLUDED)) - routes
    assert not stale, f"pages.py names routes the app no longer has: {sorted(stale)}"
    assert not listed & set(EXCLUDED), "a route is both checked and excluded"
    assert all(reason.strip() for reason in EXCLUDED.values())


def test_the_axe_check_fails_on_a_page_with_known_violations(phone):
    page = phone()
    page.set_content(FIXTURE.read_text())
    found = " ".join(axe_violations(page))
    for rule in ("image-alt", "label", "button-name", "color-contrast"):
        assert rule in found, f"axe missed {rule}: {found}"
    with pytest.raises(AssertionError, match="critical image-alt"):
        check_axe(page, "fixture")


@pytest.fixture
def site(world, app):  # noqa: F811  (pytest's fixture by name)
    """The tour's world with the ids its pages need, and who opens them."""
    world.recycle_claim = db.session.scalars(select(Claim.id).where(
        Claim.project_id == world.recycle.id, Claim.volunteer_id == world.chen.id)).one()
    world.voucher = db.session.scalars(select(Voucher.id).where(Voucher.volunteer_id == world.chen.id)).one()
    world.people = {"volunteer": world.chen, "staff": world.staff, "coordinator": world.coordinator,
                    "admin": world.admin}
    world.roster_import, world.activation_token = _roster_import(world.coordinator, app)
    return world


def _roster_import(coordinator, app) -> tuple[int, str]:
    """A confirmed roster import of the coordinator's organisation, one row with a problem, and the activation link
    of the person it created (the link's token is made here: the SMS keeps the real one)."""
    from credits.organizations.services import confirm_import, issue_tokens, preview_import

    db.session.rollback()
    with app.test_request_context(method="POST"):
        roster = preview_import(coordinator.organization, filename="成员名单.csv", actor=coordinator,
                                data="姓名,手机号,党员\n新成员,13922223333,是\n号码不对,12345,否\n".encode())
        confirm_import(roster, actor=coordinator)
        person = db.session.scalars(select(User).where(User.phone == "13922223333")).one()
        token = issue_tokens([person], actor=coordinator)[0][0]
        db.session.commit()
    return roster.id, token


@pytest.mark.parametrize("large", [False, True], ids=["standard", "large"])
def test_every_page_has_no_serious_or_critical_axe_violation(phone, words, site, large, app):
    with app.test_request_context():
        urls = [(page.who, page.endpoint, url_for(page.endpoint, **page.args(site), **page.query)) for page in PAGES]
    failures = []
    for who in ("guest", "volunteer", "staff", "coordinator", "admin"):
        page = phone()
        if large:  # switched on before signing in: signing in keeps it on, for the account too
            page.goto("/")
            switch_large_mode(page)
        if who == "guest":
            open_site(page, words)
        else:
            sign_in(page, words, site.people[who])
        for _, endpoint, url in (u for u in urls if u[0] == who):
            page.goto(url)
            page.wait_for_load_state("load")
            assert page.locator("html.large").count() == int(large), f"{url}: 长辈模式 is not {large}"
            failures += [f"{who} {endpoint} {url}: {problem}" for problem in axe_violations(page)]
    assert not failures, "\n".join(failures)


def large_switch(page):
    """The header's switch (found by its form: its English name waits for the catalogue, issue 19's -tr.json)."""
    return page.locator("header form.large-switch button[aria-pressed]")


def switch_large_mode(page) -> None:
    large_switch(page).click()
    expect(page.locator("html")).to_have_class("large")


# --- 长辈模式 in the browser ----------------------------------------------------------------------------------

LARGE_CHECKS = (Path(__file__).parent / "large_checks.js").read_text()
LARGE_PAGES = [  # the volunteer's main pages, with the name of each one's screenshot
    ("large-home", lambda s: "/"),
    ("large-projects", lambda s: "/projects"),
    ("large-project", lambda s: f"/projects/{s.health.id}"),
    ("large-my-claims", lambda s: "/me/claims"),
    ("large-checkin", lambda s: f"/checkin/{s.recycle.id}"),
    ("large-wallet", lambda s: "/me/wallet"),
    ("large-merchants", lambda s: "/merchants"),
    ("large-voucher", lambda s: f"/me/vouchers/{s.voucher}"),
    ("large-account", lambda s: "/account"),
]


def contrast(page, selector: str) -> float:
    """The contrast ratio of the element's text colour on the page's white."""
    return page.evaluate("""(selector) => {
        const [r, g, b] = getComputedStyle(document.querySelector(selector)).color.match(/[\\d.]+/g).map(Number);
        const lin = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
        return 1.05 / (0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b) + 0.05);
    }""", selector)


def test_large_mode_has_18px_text_48px_targets_more_contrast_and_the_three_volunteer_tasks(phone, words, site):
    page = phone()
    page.goto("/")
    standard = page.evaluate("() => parseFloat(getComputedStyle(document.body).fontSize)")
    standard_contrast = contrast(page, "main p")
    assert standard < 18
    switch_large_mode(page)
    expect(large_switch(page)).to_have_attribute("aria-pressed", "true")
    sign_in(page, words, site.chen)
    page.wait_for_load_state("load")  # the stylesheet applied: before it, a loaded machine measures 16 px
    tasks = page.locator("nav.quick-nav a")
    expect(tasks).to_have_count(3)
    assert [tasks.nth(i).get_attribute("href") for i in range(3)] == ["/projects", "/me/claims", "/merchants"]
    assert page.evaluate("() => parseFloat(getComputedStyle(document.body).fontSize)") >= 18
    assert contrast(page, "main p") > standard_contrast and contrast(page, "main p") >= 7  # WCAG AAA for text
    for name, path in LARGE_PAGES:
        page.goto(path(site))
        expect(page.locator("html")).to_have_class("large")
        problems = page.evaluate(LARGE_CHECKS, [18, 48])
        assert not problems, f"{name} in 长辈模式:\n" + "\n".join(problems)
        check_phone_page(page, name if words.screenshots else "")


# --- what a screen reader is told -----------------------------------------------------------------------------


def focused(page) -> dict:
    return page.evaluate("""() => { const el = document.activeElement; const said = el.getAttribute("aria-describedby");
        return {tag: el.tagName.toLowerCase(), name: el.name || "", role: el.getAttribute("role"),
                invalid: el.getAttribute("aria-invalid"), text: el.textContent.trim(),
                described: said ? document.getElementById(said).textContent.trim() : ""}; }""")


def test_a_refused_form_puts_the_focus_on_the_field_and_reads_its_error(phone, words, site):
    phone.expect_status(f"/checkin/{site.recycle.id}")  # the refusal is a 422, on purpose
    page = phone()
    sign_in(page, words, site.chen)
    page.goto(f"/checkin/{site.recycle.id}")
    page.get_by_label(words("六位签到码")).fill("000000")
    page.locator("main").get_by_role("button", name=words("签到"), exact=True).click()
    page.wait_for_load_state("load")
    now = focused(page)
    assert (now["tag"], now["name"], now["invalid"]) == ("input", "code", "true"), now
    assert now["described"], "the refused field names no error text"


def test_the_claim_result_takes_the_focus_and_the_countdown_says_its_last_minute(phone, words, site, make_user):
    newcomer = make_user("volunteer", name="周新")
    soon = projects.create_project({
        "title": "啄木鸟行动", "category": "文明实践", "location": "奉城老街", "description": "",
        "starts_at": utcnow() + timedelta(days=2), "ends_at": utcnow() + timedelta(days=2, hours=2),
        "capacity": 3, "waitlist_capacity": 0}, actor=site.coordinator)
    projects.publish(soon, actor=site.coordinator, publish_at=utcnow() + timedelta(seconds=50))
    db.session.commit()
    page = phone()
    sign_in(page, words, newcomer)

    page.goto(f"/projects/{soon.id}")
    announce = page.locator("main .countdown [data-countdown-announce]")
    expect(announce).to_have_attribute("role", "status")
    expect(announce).not_to_be_empty()
    expect(page.locator("main .countdown-clock")).to_have_attribute("aria-live", "off")

    page.goto(f"/projects/{site.health.id}")
    page.locator("main .claim-form button").click()
    page.wait_for_load_state("load")
    now = focused(page)
    assert now["role"] == "status" and now["text"] == words("认领成功！您已获得一个名额，请按时参加。"), now
