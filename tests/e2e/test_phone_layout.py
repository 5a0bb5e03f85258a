"""What a phone (390 × 844) showed wrong (issue 21, items 1 and 5), measured in Chromium: tab rows and chips all on
screen, ranking names on one line, buttons side by side of one height, 通过所选 off until something is selected,
and the coordinator's roster showing a check-in as it happens, without a reload."""

from __future__ import annotations

import re
import time

from credits.extensions import db
from credits.hours import services as hours
from tests.e2e import test_tour
from tests.e2e.conftest import PHONE, Words
from tests.e2e.test_journeys import check, sign_in
from tests.hours.helpers import confirmed_claim, file, slot

try:
    from playwright.sync_api import Page, expect
except ImportError:  # the browser fixture says why, and skips or (on CI) fails
    Page = expect = None

world = test_tour.world  # the tour's world, as a fixture of this module too

# Every link of every chip row, with its box: none may reach past the screen's edge, even scrolled into a row.
CHIP_BOXES = """() => Array.from(document.querySelectorAll("main nav.chips a, main .chips a")).map(a => {
    const box = a.getBoundingClientRect();
    return {text: a.textContent.trim(), left: box.left, right: box.right};
})"""

# The lines a table cell's first text takes: a name squeezed into a narrow column wraps one character a line.
TEXT_LINES = """cell => {
    const node = Array.from(cell.childNodes).find(n => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
    const range = document.createRange();
    range.selectNodeContents(node);
    return new Set(Array.from(range.getClientRects()).map(r => Math.round(r.top))).size;
}"""


def assert_chips_on_screen(page: Page, where: str) -> None:
    boxes = page.evaluate(CHIP_BOXES)
    assert boxes, f"{where}: no chips"
    off = [b["text"] for b in boxes if b["left"] < 0 or b["right"] > PHONE["width"]]
    assert not off, f"{where}: chips off screen: {off}"


def button_heights(page: Page, row) -> list[float]:
    controls = row.locator(":scope > a[role=button], :scope > form > button, :scope > button")
    return [round(controls.nth(i).bounding_box()["height"]) for i in range(controls.count())]


def test_chip_rows_wrap_on_screen_for_volunteer_and_coordinator(phone, words, world):
    page = phone()
    sign_in(page, words, world.coordinator)
    for path in ("/coordinate/hours", "/projects", "/coordinate/projects", "/reports/projects", "/reports/"):
        page.goto(path)
        assert_chips_on_screen(page, path)
    page.goto("/coordinate/hours")
    review_tab = page.locator("main nav.hours-nav a[aria-current]")
    box = review_tab.bounding_box()
    assert box["x"] + box["width"] <= PHONE["width"], "the coordinator's 审核时长 tab is off screen"


def test_ranking_names_stay_on_one_line(phone, words, world):
    page = phone()
    sign_in(page, words, world.coordinator)
    page.goto(f"/coordinate/reviews/{world.review}/ranking")
    name = page.locator("main table tbody td", has_text="变废为宝").first
    assert name.evaluate(TEXT_LINES) == 1, "the project's name wraps in the ranking"
    headers = page.locator("main table thead th")
    heights = {round(headers.nth(i).bounding_box()["height"]) for i in range(headers.count())}
    assert len(heights) == 1, f"some headings wrap: {heights}"
    check(page, words, "ranking")


def test_buttons_side_by_side_have_one_height_on_the_account_and_vouchers_pages(phone, words, world):
    page = phone()
    sign_in(page, words, world.chen)
    for path, row in (("/account", "main .actions >> nth=-1"), ("/me/vouchers", "main .voucher-list .actions")):
        page.goto(path)
        heights = button_heights(page, page.locator(row).first)
        assert len(heights) >= 2 and len(set(heights)) == 1, f"{path}: buttons of heights {heights}"


def test_approve_selected_is_off_until_a_record_is_selected(phone, words, world, make_user):
    late = make_user("volunteer", name="晚来的")
    file(confirmed_claim(world.recycle, late), late, slot(1, 60, hour=14))
    page = phone()
    sign_in(page, words, world.coordinator)
    page.goto("/coordinate/hours")
    approve = page.locator("#bulk").get_by_role("button", name=words("通过所选"))
    reject = page.locator("#bulk").get_by_role("button", name=words("驳回所选"))
    expect(approve).to_be_disabled()
    expect(reject).to_be_disabled()
    check(page, words, "review")
    page.locator('input[type="checkbox"][form="bulk"]').first.check()
    expect(approve).to_be_enabled()
    page.locator('input[type="checkbox"][form="bulk"]').first.uncheck()
    expect(approve).to_be_disabled()
    page.locator("[data-select-all]").check()
    expect(approve).to_be_enabled()


def test_the_roster_shows_a_check_in_as_it_happens(phone, world, make_user):
    """In Chinese: its words are new, and the English catalogue gets them when the coordinator fills it."""
    words = Words("zh_CN")
    walker = make_user("volunteer", name="刚到的")
    confirmed_claim(world.recycle, walker)
    page = phone()
    sign_in(page, words, world.coordinator)
    page.goto(f"/coordinate/projects/{world.recycle.id}/roster")
    row = page.locator("main li", has_text="刚到的")
    expect(row).to_contain_text(words("未签到"))
    expect(row.get_by_role("button", name=words("标记缺席"))).to_be_visible()

    # On the volunteer's own phone, scanning the code on site: the coordinator's page is left alone meanwhile.
    volunteer = phone()
    sign_in(volunteer, words, walker)
    code = hours._code_for(world.recycle.id, int(time.time()) // hours.CODE_WINDOW, world.coordinator.id)
    volunteer.goto(f"/checkin/{world.recycle.id}?code={code}")
    volunteer.locator("main button.big-button").click()
    expect(volunteer.locator("main")).to_contain_text("签退")
    expect(row).to_contain_text(re.compile(r"已签到 \d\d:\d\d"), timeout=15_000)  # the feed is asked every 5 s
    expect(row.get_by_role("button", name=words("标记缺席"))).to_have_count(0)
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1  # no reload
    check(page, words, "roster-live")


def test_the_upcoming_badge_turns_to_open_when_the_countdown_ends(phone, words, coordinator, volunteer):
    """即将开放 beside a countdown that says 已开放 (issue 21, item 6): the badge turns with it, without a reload."""
    from datetime import timedelta

    from credits.projects import services as projects
    from credits.timeutil import utcnow

    starts = utcnow() + timedelta(days=1)
    project = projects.create_project({"title": "啄木鸟行动", "category": "文明实践", "location": "奉城老街",
                                       "starts_at": starts, "ends_at": starts + timedelta(hours=2), "capacity": 3,
                                       "waitlist_capacity": 3}, actor=coordinator)
    projects.publish(project, actor=coordinator, publish_at=utcnow() + timedelta(seconds=4))
    db.session.commit()
    page = phone()
    sign_in(page, words, volunteer)
    page.goto(f"/projects/{project.id}")
    badge = page.locator("main .badge-upcoming, main .badge-open").first
    expect(badge).to_have_text(words("即将开放"))
    expect(badge).to_have_text(words("认领中"), timeout=10_000)
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1


def test_taking_a_voucher_asks_first_and_a_no_spends_nothing(phone, words, world):
    page = phone()
    sign_in(page, words, world.chen)
    page.goto("/merchants")
    take = page.locator(".service-list li", has_text="精洗一次").locator("button")
    balance = page.locator("[data-balance]").inner_text()
    questions = []

    def answer_no(dialog):
        questions.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", answer_no)
    take.click()
    expect(take).to_be_enabled()
    expect(take).to_have_text(words("领券"))
    assert len(questions) == 1 and "2" in questions[0] and "精洗一次" in questions[0]
    page.reload()
    assert page.locator("[data-balance]").inner_text() == balance


def test_back_to_a_form_that_was_refused_opens_it_again_not_err_cache_miss(phone, words, world):
    phone.expect_status("/coordinate/projects/new")  # the refused form is a 422, on purpose
    page = phone()
    sign_in(page, words, world.coordinator)
    page.goto("/coordinate/projects/new")
    page.locator('input[name="title"]').fill("")
    page.locator("main form button[type=submit]").last.click()
    expect(page.locator("#e-title")).to_have_text(words("请填写此项。"))
    page.goto("/projects")
    back = page.go_back()
    assert back is not None and back.status == 200 and back.request.method == "GET"
    assert page.url.endswith("/coordinate/projects/new")
    expect(page.locator('input[name="title"]')).to_be_visible()
