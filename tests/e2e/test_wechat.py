"""Issue 19: the site in WeChat's in-app browser — its user agent, and without the APIs it does not give a page
(tests/e2e/wechat.js): a volunteer checks in with the six digits and shows her voucher's QR code, and the shop,
with no camera to scan it, types the code and redeems it; the voucher page turns to used by itself."""

from __future__ import annotations

import re
from pathlib import Path

from flask import url_for

from tests.e2e.conftest import Words, check_phone_page
from tests.e2e.pages import PAGES
from tests.e2e.test_a11y import site  # noqa: F401  (the fixture: the tour's world with its ids)
from tests.e2e.test_journeys import flash, sign_in
from tests.e2e.test_tour import world  # noqa: F401  (the fixture site builds on)

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture says why, and skips or (on CI) fails
    expect = None

# WeChat 8.0 on Android (XWeb, the Chromium it ships), as its pages see it.
WECHAT_UA = ("Mozilla/5.0 (Linux; Android 14; V2307A Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160117 MMWEBSDK/20240404 MMWEBID/6170 "
             "MicroMessenger/8.0.49.2600(0x2800313D) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64")
WECHAT_LIMITS = (Path(__file__).parent / "wechat.js").read_text()


def in_wechat(phone):
    page = phone(user_agent=WECHAT_UA, init_script=WECHAT_LIMITS)
    page.goto("/")
    missing = page.evaluate("""() => [navigator.mediaDevices, navigator.clipboard, navigator.serviceWorker,
                                      window.Notification, navigator.share].every((api) => api === undefined)""")
    assert missing and "MicroMessenger" in page.evaluate("() => navigator.userAgent"), "not WeChat's browser"
    return page


def test_in_wechat_a_volunteer_checks_in_and_the_shop_redeems_her_voucher_without_a_camera(
        phone, words, site):  # noqa: F811  (pytest's fixture by name)
    screen = phone()  # the coordinator's check-in screen: a laptop or tablet, not WeChat
    sign_in(screen, words, site.coordinator)
    screen.goto(f"/coordinate/projects/{site.recycle.id}/checkin")
    shown = screen.locator("[data-code]")
    expect(shown).to_have_text(re.compile(r"^\d{3} \d{3}$"))

    volunteer = in_wechat(phone)
    sign_in(volunteer, words, site.chen)
    volunteer.goto(f"/checkin/{site.recycle.id}")
    volunteer.get_by_label(words("六位签到码")).fill(shown.inner_text())
    check_phone_page(volunteer, "")
    volunteer.locator("main").get_by_role("button", name=words("签到"), exact=True).click()
    expect(flash(volunteer)).to_contain_text(words("签到成功！"))
    expect(volunteer.locator(".checkin-state")).to_contain_text(words("正在服务中"))
    expect(screen.locator("[data-checked-in]")).to_contain_text("1 / 1")

    volunteer.goto(f"/me/vouchers/{site.voucher}")
    qr = volunteer.locator(".voucher-qr svg")
    expect(qr).to_be_visible()
    assert qr.bounding_box()["width"] >= 250, "the voucher's QR is too small to scan from a phone"
    code = volunteer.locator("p.voucher-code").inner_text()
    check_phone_page(volunteer, "")

    till = in_wechat(phone)
    sign_in(till, words, site.staff)
    till.goto("/shop/redeem")
    till.locator("main [data-scan-start]").click()
    # No camera in WeChat over http: the page says to type the code, and the field is right there.
    expect(till.locator("main [data-scan-status]")).to_be_visible()
    expect(till.locator("main [data-scan-status]")).not_to_be_empty()
    till.get_by_label(words("券码")).fill(code)
    till.locator("main").get_by_role("button", name=words("查询")).click()
    confirm = till.locator("article.redeem-confirm")
    expect(confirm.locator("h2")).to_have_text("精洗一次")
    check_phone_page(till, "")
    confirm.get_by_role("button", name=words("确认核销")).click()
    expect(flash(till)).to_have_text(words("核销成功：%s，%s 公益币（%s）。", "精洗一次", 2, "陈*"))

    # The voucher page left open in WeChat turns to used without a reload.
    expect(volunteer.locator(".voucher-card .badge")).to_have_text(words("已使用"))
    expect(volunteer.locator(".voucher-qr")).to_have_count(0)


def test_every_guest_volunteer_and_shop_page_opens_in_wechat_without_a_script_error(phone, site, app):  # noqa: F811
    """The phone fixture fails the test on any JavaScript error or console error in these pages."""
    with app.test_request_context():
        urls = [(page.who, url_for(page.endpoint, **page.args(site), **page.query)) for page in PAGES
                if page.who in ("guest", "volunteer", "staff")]
    for who in ("guest", "volunteer", "staff"):
        page = in_wechat(phone)
        if who != "guest":
            sign_in(page, Words("zh_CN"), site.people[who])
        for _, url in (u for u in urls if u[0] == who):
            response = page.goto(url)
            assert response.status == 200, f"{url} in WeChat: {response.status}"
            page.wait_for_load_state("load")
            expect(page.locator("main h1").first).to_be_visible()
