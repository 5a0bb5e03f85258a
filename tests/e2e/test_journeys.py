"""The journeys of issue 8 in Chromium at phone size, in Chinese and again in English through the language switch:
what a volunteer, a shop's staff and a coordinator see, step by step, with every main page checked for phone use.

Two things a browser cannot do in a test's few seconds are done to the database, each by a named helper: an hour
of service passing between check-in and check-out, and the clock reaching a publish time set to the minute.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from credits.extensions import db
from credits.hours.models import RecordStatus, ServiceRecord
from credits.ledger.models import SystemAccount, TxKind
from credits.ledger.services import system_account, transfer, user_account
from credits.merchants import services as merchants
from credits.projects import services as projects
from credits.projects.models import Project
from credits.timeutil import local_zone, utcnow
from tests.e2e.conftest import FOCUS_CHECK, PHONE, PHONE_CHECKS, Words, check_phone_page, fresh
from tests.hours.helpers import at, confirmed_claim, local_day, slot, started_project

try:
    from playwright.sync_api import Page, expect
except ImportError:  # the browser fixture says why, and skips or (on CI) fails
    Page = expect = None

PASSWORD = "gongyi-test-2026"

# --- what a person does ----------------------------------------------------------------------------------------


def check(page: Page, words: Words, name: str) -> None:
    check_phone_page(page, name if words.screenshots else "")


def open_site(page: Page, words: Words) -> None:
    """Open the home page and, for English, tap the header's language switch as a person would."""
    page.goto("/")
    if words.lang == "en":
        page.locator("header").get_by_role("link", name="English").click()
        expect(page.locator("html")).to_have_attribute("lang", "en")
    else:
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")


def sign_in(page: Page, words: Words, user, password: str = PASSWORD) -> None:
    open_site(page, words)
    page.locator("header").get_by_role("link", name=words("登录"), exact=True).click()
    page.get_by_label(words("手机号")).fill(user.phone)
    page.get_by_label(words("密码"), exact=True).fill(password)
    page.locator("main").get_by_role("button", name=words("登录"), exact=True).click()
    if user.roles == ["merchant"]:  # shop staff land on the till (核销), not the home page
        expect(page).to_have_url(re.compile(r"/shop/redeem$"))
    else:
        expect(page.locator("main")).to_contain_text(words("您好，%s。", user.name))


def menu(page: Page, words: Words, item: str) -> None:
    """Open the header's menu and tap an item."""
    page.locator("header details[data-menu] > summary").click()
    page.locator("header details[data-menu]").get_by_role("link", name=words(item), exact=True).click()


def flash(page: Page):
    return page.locator("main .flash").first


def an_hour_of_service_passes() -> None:
    """Move the open check-in 61 minutes back, as if the volunteer had served that long since checking in."""
    db.session.rollback()
    record = db.session.scalars(select(ServiceRecord).where(ServiceRecord.status == RecordStatus.OPEN)).one()
    record.started_at -= timedelta(minutes=61)
    db.session.commit()


def the_clock_reaches_publish_at(title: str) -> Project:
    """The publish time the coordinator set (to the minute, as the form takes it) arrives now."""
    db.session.rollback()
    project = db.session.scalars(select(Project).where(Project.title == title)).one()
    project.publish_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    return project


# --- the world the journeys happen in --------------------------------------------------------------------------


@pytest.fixture
def health_station(coordinator) -> Project:
    """健康加油站: a draft that began two hours ago and runs three more; every full hour earns 2 coins."""
    now = utcnow()
    project = projects.create_project({
        "title": "健康加油站", "category": "健康服务", "location": "奉城镇社区卫生服务中心",
        "description": "为社区老人测血压、测血糖。", "starts_at": now - timedelta(hours=2),
        "ends_at": now + timedelta(hours=3), "capacity": 5, "waitlist_capacity": 5, "block_minutes": 60,
        "coins_per_block": 2}, actor=coordinator)
    db.session.commit()
    return project


@pytest.fixture
def car_wash(coordinator):
    """奉城老街洗车行 with one member of staff and a wash for 2 coins."""
    shop = merchants.create_merchant({"name": "奉城老街洗车行", "address": "奉城老街 18 号", "category": "car_wash",
                                      "description": ""}, actor=coordinator)
    staff = merchants.add_staff(shop, {"phone": "13700000005", "name": "王店员", "password": PASSWORD},
                                actor=coordinator)
    merchants.create_service(shop, {"name": "精洗一次", "description": "内外精洗", "price": 2, "daily_quota": 10},
                             actor=coordinator)
    db.session.commit()
    return shop, staff


# --- journeys 1 and 2: a volunteer earns coins and spends them; the shop redeems the voucher --------------------


def test_volunteer_claims_at_the_opening_checks_in_earns_coins_and_the_shop_redeems_the_voucher(
        phone, words, coordinator, health_station, car_wash, sms_texts):
    _shop, staff = car_wash
    volunteer = phone()

    # Registers from the home page, with the code the SMS brings.
    open_site(volunteer, words)
    check(volunteer, words, "home")
    volunteer.locator("main").get_by_role("button", name=words("注册成为志愿者")).click()
    check(volunteer, words, "register")
    volunteer.get_by_label(words("手机号")).fill("13912345678")
    send_code = volunteer.locator("main [data-sms-code]")
    send_code.click()
    expect(send_code).to_be_disabled()  # the 60 s countdown
    expect(send_code).to_have_text(re.compile(r"\b(60|59|58)\b"))
    volunteer.locator("#f-code").fill(sms_texts.code_for("13912345678"))
    volunteer.get_by_label(words("姓名")).fill("张小明")
    volunteer.get_by_label(words("密码")).fill("gongyi2026")
    volunteer.locator("main").get_by_role("button", name=words("注册"), exact=True).click()
    expect(flash(volunteer)).to_contain_text(words("注册成功，欢迎加入！"))

    # The coordinator publishes 健康加油站; claims open three seconds from now.
    projects.publish(fresh(health_station), actor=fresh(coordinator),
                     publish_at=utcnow() + timedelta(seconds=3))
    db.session.commit()

    # Browses: the project is there, opening soon, with a countdown; its button wakes up at the opening.
    menu(volunteer, words, "项目")
    card = volunteer.locator("article.project-card", has_text="健康加油站")
    expect(card).to_contain_text(words("即将开放"))
    expect(card.locator(".countdown-clock")).to_have_text(re.compile(r"\d\d:\d\d:\d\d"))
    check(volunteer, words, "projects")
    card.get_by_role("link", name=words("查看详情")).click()
    claim_button = volunteer.locator("main .claim-form button")
    expect(claim_button).to_be_disabled()
    expect(claim_button).to_have_text(words("即将开放"))
    check(volunteer, words, "project-opening-soon")
    expect(claim_button).to_be_enabled(timeout=8_000)
    expect(claim_button).to_have_text(words("立即认领"))
    claim_button.click()
    expect(flash(volunteer)).to_have_text(words("认领成功！您已获得一个名额，请按时参加。"))
    expect(volunteer.locator(".my-claim-box .badge")).to_have_text(words("已确认"))

    # On site: the coordinator shows the check-in screen; the volunteer types the six digits it shows.
    screen = phone()
    sign_in(screen, words, coordinator)
    menu(screen, words, "组织项目")
    screen.locator("article.project-card", has_text="健康加油站").get_by_role(
        "button", name=words("管理项目")).click()
    screen.locator("main").get_by_role("button", name=words("签到屏")).click()
    shown = screen.locator("[data-code]")
    expect(shown).to_have_text(re.compile(r"^\d{3} \d{3}$"))
    expect(screen.locator("[data-qr] svg")).to_be_visible()
    check(screen, words, "checkin-screen")

    volunteer.locator("main").get_by_role("button", name=words("签到 / 签退")).click()
    volunteer.get_by_label(words("六位签到码")).fill(shown.inner_text())
    check(volunteer, words, "checkin")
    expect(screen.locator("[data-checked-in]")).to_contain_text("0 / 1")
    volunteer.locator("main").get_by_role("button", name=words("签到"), exact=True).click()
    expect(flash(volunteer)).to_contain_text(words("签到成功！"))
    expect(volunteer.locator(".checkin-state")).to_contain_text(words("正在服务中"))
    # The screen counts the arrival without being reloaded.
    expect(screen.locator("[data-checked-in]")).to_contain_text("1 / 1")

    an_hour_of_service_passes()
    volunteer.reload()
    volunteer.get_by_label(words("六位签到码")).fill(shown.inner_text())
    volunteer.locator("main").get_by_role("button", name=words("签退"), exact=True).click()
    expect(flash(volunteer)).to_contain_text(words("已自动通过，获得 %s 公益币", 2))
    check(volunteer, words, "my-hours")

    # The coins are in the wallet.
    menu(volunteer, words, "钱包")
    expect(volunteer.locator("[data-balance]")).to_have_text(f"2 {words('枚')}")
    first_line = volunteer.locator(".tx-list li").first
    expect(first_line).to_contain_text(words("发放"))
    expect(first_line.locator(".tx-amount strong")).to_have_text("+2")
    check(volunteer, words, "wallet")

    # Takes a voucher for a car wash; the button says it is working while the answer is on its way.
    menu(volunteer, words, "公益币兑换")
    wash = volunteer.locator(".service-list li", has_text="精洗一次")
    expect(wash.locator(".price")).to_have_text(words("%s 枚", 2))
    check(volunteer, words, "merchants")
    take = wash.locator("button")
    expect(take).to_have_text(words("领券"))
    # What the button shows as the page is left for the answer (read then, because Playwright's own reads wait
    # for a navigation in progress to finish).
    volunteer.evaluate("""() => window.addEventListener("pagehide", () => {
        const button = document.querySelector(".service-list button");
        sessionStorage.setItem("pressed", JSON.stringify([button.textContent, button.disabled]));
    })""")
    volunteer.once("dialog", lambda dialog: dialog.accept())  # 确定用 2 枚公益币兑换…吗？
    take.click()
    expect(flash(volunteer)).to_have_text(words("兑换成功！到店时出示下面的二维码或券码。"))
    qr = volunteer.locator(".voucher-qr svg")
    expect(qr).to_be_visible()
    assert qr.bounding_box()["width"] >= 250, "the voucher's QR is too small to scan from a phone"
    code = volunteer.locator("p.voucher-code").inner_text()
    assert re.fullmatch(r"[0-9A-Z]{4}(-[0-9A-Z]{1,4})+", code), code
    expect(volunteer.locator(".voucher-card .badge")).to_have_text(words("待使用"))
    assert volunteer.evaluate("() => JSON.parse(sessionStorage.getItem('pressed'))") == [words("处理中…"), True]
    check(volunteer, words, "voucher")
    volunteer.evaluate("() => { window.notReloaded = true; }")  # a reload would forget it

    # Journey 2: the shop's staff types the code (in lower case, without the hyphens) and redeems it.
    till = phone()
    sign_in(till, words, staff)  # straight to the till
    check(till, words, "redeem")
    till.get_by_label(words("券码")).fill(code.replace("-", "").lower())
    till.locator("main").get_by_role("button", name=words("查询")).click()
    confirm = till.locator("article.redeem-confirm")
    expect(confirm.locator("h2")).to_have_text("精洗一次")
    expect(confirm).to_contain_text("张*明")
    expect(confirm).not_to_contain_text("13912345678")
    check(till, words, "redeem-confirm")
    confirm.get_by_role("button", name=words("确认核销")).click()
    expect(flash(till)).to_have_text(words("核销成功：%s，%s 公益币（%s）。", "精洗一次", 2, "张*明"))

    menu(till, words, "今日与对账")
    expect(till.locator("main")).to_contain_text(words("共 %s 张，%s 公益币", 1, 2))
    today = till.locator(".tx-list li").first
    expect(today).to_contain_text("精洗一次")
    expect(today).to_contain_text("张*明 139****5678")
    check(till, words, "shop-today")

    # The voucher page, left open on the volunteer's phone since before the redemption, has turned by itself.
    expect(volunteer.locator(".voucher-card .badge")).to_have_text(words("已使用"))
    expect(volunteer.locator(".voucher-qr")).to_have_count(0)
    assert volunteer.evaluate("() => window.notReloaded") is True


def test_an_open_voucher_page_turns_to_used_when_another_till_redeems_it(browser, live_server, phone, words,
                                                                       make_user, car_wash):
    shop, staff = car_wash
    owner = make_user("volunteer", name="赵小红")
    transfer(TxKind.ADJUST, system_account(SystemAccount.ISSUANCE), user_account(owner.id), 10, memo="test")
    voucher = merchants.take_voucher(shop.services[0], volunteer=owner)
    db.session.commit()
    voucher_id, code = voucher.id, voucher.code
    volunteer = phone()
    sign_in(volunteer, words, owner)
    volunteer.goto(f"/me/vouchers/{voucher_id}")
    badge = volunteer.locator(".voucher-card .badge")
    expect(badge).to_have_text(words("待使用"))
    expect(volunteer.locator(".voucher-qr svg")).to_be_visible()
    expect(volunteer.locator("[data-redeemed]").first).to_be_hidden()
    volunteer.evaluate("() => { window.notReloaded = true; }")  # a reload would forget it

    # Another till (the API, as the shop's own app would) redeems it while the page stays open.
    till = browser.new_context(base_url=live_server)
    token = till.request.post("/api/v1/auth/token", data={"phone": staff.phone, "password": PASSWORD}).json()
    redeemed = till.request.post("/api/v1/redemptions", data={"code": code},
                                 headers={"Authorization": f"Bearer {token['token']}"})
    assert redeemed.ok, redeemed.text()
    till.close()

    expect(badge).to_have_text(words("已使用"))
    expect(badge).to_have_class(re.compile(r"badge-voucher-redeemed"))
    expect(volunteer.locator(".voucher-qr")).to_have_count(0)
    expect(volunteer.locator("p.voucher-code")).to_have_class(re.compile(r"\bused\b"))
    expect(volunteer.locator("dd[data-redeemed-at]")).to_have_text(re.compile(r"\d\d:\d\d"))
    assert volunteer.evaluate("() => window.notReloaded") is True


# --- journey 3: a coordinator publishes, watches the claims arrive and reviews a manual record -----------------


@pytest.fixture
def forgotten_claim(coordinator, make_user):
    """陈晨's place on 变废为宝, which she served yesterday from 9 to 11 without checking in."""
    project = started_project(coordinator, title="变废为宝", days_ago=3, block_minutes=60, coins_per_block=1)
    volunteer = make_user("volunteer", name="陈晨")
    return confirmed_claim(project, volunteer)


def test_coordinator_publishes_for_later_watches_claims_arrive_and_reviews_a_manual_record(
        phone, words, coordinator, forgotten_claim, make_user, client, token_for):
    # 陈晨 files the two hours she forgot to check in for, on her own phone.
    chen = phone()
    sign_in(chen, words, forgotten_claim.volunteer)
    menu(chen, words, "我的时长")
    chen.locator("main").get_by_role("button", name=words("补录时长")).click()
    expect(chen.locator("h1")).to_have_text(words("补录时长"))
    served = slot(1, 120)
    chen.get_by_label(words("开始时间")).fill(served["started_at"].strftime("%Y-%m-%dT%H:%M"))
    chen.get_by_label(words("结束时间")).fill(served["ended_at"].strftime("%Y-%m-%dT%H:%M"))
    chen.get_by_label(words("说明（选填）")).fill("现场忘记签到，王协调见证")
    check(chen, words, "manual-record")
    chen.locator("main").get_by_role("button", name=words("提交补录")).click()
    expect(flash(chen)).to_have_text(words("补录已提交，等待协调员审核。"))
    claim_id = forgotten_claim.id
    db.session.rollback()  # the server's thread committed it: read past this session's snapshot
    manual_record = db.session.scalars(select(ServiceRecord).where(ServiceRecord.claim_id == claim_id)).one()
    assert (manual_record.started_at, manual_record.ended_at) == (served["started_at"], served["ended_at"])

    desk = phone()
    sign_in(desk, words, coordinator)

    # A new project, saved as a draft, published for claims to open in an hour.
    menu(desk, words, "组织项目")
    desk.locator("main").get_by_role("button", name=words("新建项目")).click()
    tomorrow = at(-1, 9)
    desk.get_by_label(words("项目名称")).fill("啄木鸟行动")
    desk.get_by_label(words("类别")).fill("文明实践")
    desk.get_by_label(words("介绍")).fill("沿奉城老街查找并上报公共设施问题。")
    desk.get_by_label(words("地点")).fill("奉城老街")
    desk.get_by_label(words("开始时间")).fill(tomorrow.strftime("%Y-%m-%dT%H:%M"))
    desk.get_by_label(words("结束时间")).fill((tomorrow + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"))
    desk.get_by_label(words("名额"), exact=True).fill("2")
    check(desk, words, "project-form")
    desk.locator("main").get_by_role("button", name=words("保存为草稿")).click()
    expect(flash(desk)).to_contain_text(words("草稿已保存。"))

    opens = (utcnow() + timedelta(hours=1)).astimezone(local_zone())
    desk.get_by_label(words("开放认领时间")).fill(opens.strftime("%Y-%m-%dT%H:%M"))
    desk.locator("main").get_by_role("button", name=words("发布"), exact=True).click()
    expect(flash(desk)).to_contain_text(words("已发布，将于"))
    expect(flash(desk)).to_contain_text(opens.strftime("%H:%M"))
    expect(desk.locator(".project-detail .badge").first).to_have_text(words("即将开放"))
    expect(desk.locator(".countdown-clock")).to_have_text(re.compile(r"0?0:5\d:\d\d|01:00:00"))
    check(desk, words, "project-published")

    # The coordinator keeps the roster open; claims arrive from volunteers' phones once it opens: two places, then
    # the waitlist.
    desk.locator("main").get_by_role("button", name=words("认领名单")).click()
    expect(desk.locator("main")).to_contain_text(words("还没有人认领这个项目。"))
    project = the_clock_reaches_publish_at("啄木鸟行动")
    for name in ("王芳", "赵强", "孙丽"):
        claimer = make_user("volunteer", name=name)
        response = client.post(f"/api/v1/projects/{project.id}/claims", headers=token_for(claimer))
        assert response.status_code == 201, response.json

    desk.reload()
    confirmed = desk.locator("section.roster-confirmed")
    expect(confirmed.locator("h2")).to_have_text(words("已确认（按认领先后）"))
    expect(confirmed.locator("li")).to_have_count(2)
    expect(confirmed.locator("li").nth(0)).to_contain_text("王芳")
    expect(confirmed.locator("li").nth(1)).to_contain_text("赵强")
    waitlist = desk.locator("section.roster-waitlisted")
    expect(waitlist.locator("h2")).to_have_text(words("候补（按排队顺序）"))
    expect(waitlist.locator("li")).to_contain_text(words("候补 %s", 1))
    expect(waitlist.locator("li")).to_contain_text("孙丽")
    check(desk, words, "roster")

    # The manual record waits in the review queue; approving it issues its coins.
    menu(desk, words, "审核时长")
    card = desk.locator(f"#record-{manual_record.id}")
    expect(card).to_contain_text("陈晨")
    expect(card).to_contain_text(words("补录"))
    expect(card).to_contain_text("现场忘记签到，王协调见证")
    expect(card.locator(".badge")).to_have_text(words("待审核"))
    check(desk, words, "review")
    card.get_by_role("button", name=words("通过"), exact=True).click()
    two_hours = words("%s 小时", 2)
    expect(flash(desk)).to_have_text(words("已通过 %s 的 %s，发放 %s 公益币。",
                                           *(("陈晨", two_hours) if words.lang == "zh_CN" else (two_hours, "陈晨")), 2))
    expect(desk.locator("article.empty p").first).to_have_text(words("没有符合条件的记录。"))
    assert fresh(manual_record).status == RecordStatus.APPROVED

    # The dashboard for the fortnight around today: both projects, the hours just approved, their coins.
    menu(desk, words, "报表")
    expect(desk.locator("h1")).to_have_text(words("报表概览"))
    desk.get_by_label(words("开始日期")).fill(local_day(7).isoformat())
    desk.get_by_label(words("结束日期")).fill(local_day(-7).isoformat())
    desk.evaluate("""() => window.addEventListener("pagehide", () => {
        const button = document.querySelector("main form.period-form button");
        sessionStorage.setItem("pressed", JSON.stringify([button.textContent, button.disabled]));
    })""")
    desk.locator("main form.period-form").get_by_role("button", name=words("查看")).click()
    figures = desk.locator(".report-figures > div")
    expect(figures.filter(has_text=words("核定时长")).locator("dd").first).to_have_text(words("%s 小时", 2))
    expect(figures.filter(has_text=words("发布的项目")).locator("dd")).to_have_text("2")
    fill = figures.filter(has_text=words("认领率")).locator("dd")
    expect(fill.nth(1)).to_have_text(words("%s / %s 个名额", 3, 12))  # 变废为宝 1 of 10, 啄木鸟行动 2 of 2
    issued = desk.locator("section[aria-labelledby=h-coins] .report-figures > div").filter(has_text=words("发放"))
    expect(issued.locator("dd")).to_have_text("2")
    # A form that only asks for a page says it is working too: the year's dashboard takes a moment at town scale.
    assert desk.evaluate("() => JSON.parse(sessionStorage.getItem('pressed'))") == [words("处理中…"), True]
    check(desk, words, "dashboard")

    # The projects table, and all of it as CSV: what a coordinator opens in Excel.
    desk.locator("main nav.chips").first.get_by_role("link", name=words("项目统计")).click()
    expect(desk.locator("main table")).to_contain_text("啄木鸟行动")
    check(desk, words, "report-projects")
    with desk.expect_download() as download:
        desk.locator("main").get_by_role("button", name=words("导出 CSV")).click()
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text("utf-8-sig"))))
    header = rows[0]
    assert words("项目") in header and words("已核定时长（小时）") in header  # hours, as the table shows them
    by_title = {row[header.index(words("项目"))]: row for row in rows[1:]}
    assert set(by_title) == {"变废为宝", "啄木鸟行动"}
    assert by_title["变废为宝"][header.index(words("已核定时长（小时）"))] == "2.0"


# --- pages off the happy path --------------------------------------------------------------------------------


def test_a_newcomer_sees_what_to_do_next_and_friendly_error_pages(phone, words, make_user, coordinator):
    newcomer = make_user("volunteer", name="刘新")
    page = phone()
    phone.expect_status("/no-such-page")
    phone.expect_status("/coordinate/projects")
    sign_in(page, words, newcomer)

    page.goto("/me/claims")
    empty = page.locator("article.empty")
    expect(empty).to_contain_text(words("您还没有认领项目。"))
    expect(empty.get_by_role("button", name=words("去认领项目"))).to_be_visible()
    check(page, words, "my-claims-empty")

    missing = page.goto("/no-such-page")
    assert missing.status == 404
    expect(page.locator("main h1")).to_have_text(words("页面不存在"))
    expect(page.locator("main").get_by_role("button", name=words("回到首页"))).to_be_visible()
    check(page, words, "error-404")

    forbidden = page.goto("/coordinate/projects")
    assert forbidden.status == 403
    expect(page.locator("main h1")).to_have_text(words("没有权限"))
    check_phone_page(page)


def test_the_phone_checks_catch_a_page_that_fails_them(phone):
    """The checks above can fail: a page too wide, with a small button, an unlabelled field, faint text, an id
    used twice."""
    page = phone()
    page.goto("/")
    page.evaluate("""() => {
        const add = (tag, text, style) => {
            const el = document.createElement(tag);
            el.textContent = text;
            Object.assign(el.style, style);  // through the CSSOM, which the CSP allows, unlike style attributes
            document.querySelector("main").append(el);
            return el;
        };
        add("div", "wide", {width: "600px"});
        add("button", "small", {minHeight: "0", height: "30px"});
        add("input", "", {}).name = "nameless";
        add("p", "faint", {color: "#bbb"});
        add("span", "one", {}).id = "twice";
        add("span", "two", {}).id = "twice";
    }""")
    problems = "\n".join(page.evaluate(PHONE_CHECKS, PHONE["width"]))
    assert "scrolls sideways" in problems
    assert 'tap target <button> "small" is 30.0px high' in problems
    assert "field nameless has no label" in problems
    assert 'contrast' in problems and '"faint"' in problems
    assert 'id "twice" is used 2 times' in problems


def test_the_focus_check_catches_a_page_without_focus_styles(phone):
    """The focus check can fail: with every focus style removed, no control reached by Tab shows the focus, and
    Pico's invisible resting shadow (rgba(0, 0, 0, 0) 0px 0px 0px 0px) does not count as a ring."""
    page = phone()
    page.goto("/")
    # Through an adopted style sheet, which the CSP allows, unlike a <style> element.
    page.evaluate("""() => {
        const sheet = new CSSStyleSheet();
        sheet.replaceSync("*:focus, *:focus-visible { outline: none !important; box-shadow: none !important; }");
        document.adoptedStyleSheets = [sheet];
    }""")
    for _ in range(4):
        page.keyboard.press("Tab")
        assert "shows no focus" in page.evaluate(FOCUS_CHECK)
    # A focus that falls back to the page itself is no better.
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    assert "<body>" in page.evaluate(FOCUS_CHECK)


def test_a_half_typed_project_survives_the_sign_in_expiring(phone, coordinator):
    """The session ends while the coordinator types (here: the browser's cookies are cleared). Saving used to land
    on a bare 400 page and lose the form; now it leads through sign-in back to the form, filled in as it was. In
    Chinese only: the language chosen is kept in the session that ends here."""
    words = Words("zh_CN")
    desk = phone()
    sign_in(desk, words, coordinator)
    menu(desk, words, "组织项目")
    desk.locator("main").get_by_role("button", name=words("新建项目")).click()
    desk.get_by_label(words("项目名称")).fill("啄木鸟行动")
    desk.get_by_label(words("介绍")).fill("沿奉城老街查找并上报公共设施问题。")
    desk.get_by_label(words("名额"), exact=True).fill("7")
    desk.context.clear_cookies()
    desk.locator("main").get_by_role("button", name=words("保存为草稿")).click()

    expect(flash(desk)).to_contain_text(words("页面已过期。您填写的内容已保留，请确认后再提交一次。"))
    desk.get_by_label(words("手机号")).fill(coordinator.phone)
    desk.get_by_label(words("密码"), exact=True).fill(PASSWORD)
    desk.locator("main").get_by_role("button", name=words("登录"), exact=True).click()

    expect(desk.get_by_label(words("项目名称"))).to_have_value("啄木鸟行动")
    expect(desk.get_by_label(words("介绍"))).to_have_value("沿奉城老街查找并上报公共设施问题。")
    expect(desk.get_by_label(words("名额"), exact=True)).to_have_value("7")
    assert "/coordinate/projects/new" in desk.url
