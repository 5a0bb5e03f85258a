"""Issue 19: every page of tests/e2e/pages.py checked by axe-core (WCAG 2.1 A/AA, no serious or critical violation)
at 390 × 844, in Chinese and in English, in the standard mode and in 长辈模式; the list kept complete against the
app's routes; and a page with known violations proving the check can fail."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import url_for
from sqlalchemy import select

from credits.extensions import db
from credits.merchants.models import Voucher
from credits.projects.models import Claim
from tests.e2e.axe import axe_violations, check_axe
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
    return world


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


def switch_large_mode(page) -> None:
    page.locator("header").get_by_role("button", name=_switch_name(page)).click()
    expect(page.locator("html")).to_have_class("large")


def _switch_name(page) -> str:
    return "Large text" if page.locator("html").get_attribute("lang") == "en" else "长辈模式"
