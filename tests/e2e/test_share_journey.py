"""Issue 18 in the browser: a coordinator downloads a project's share poster from its page, its QR opens the
project; a visitor opens the home page and the 公示 page with its chart. In Chinese, the language posters and
share cards are made in for the town's chat groups."""

from __future__ import annotations

from datetime import timedelta

import zxingcpp
from PIL import Image

from credits.extensions import db
from credits.merchants import services as merchants
from credits.projects import services as projects
from credits.reviews import services as reviews
from credits.timeutil import local_zone, utcnow
from tests.e2e.conftest import SCREENSHOTS, TAKE_SCREENSHOTS, Words, check_phone_page
from tests.e2e.test_journeys import sign_in
from tests.hours.helpers import approve, confirmed_claim, file, slot, started_project
from tests.merchants.helpers import make_staff

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture says why, and skips or (on CI) fails
    expect = None

ZH = Words("zh_CN")


def _town(coordinator, make_user):
    served = started_project(coordinator, title="健康加油站", capacity=5, block_minutes=60, coins_per_block=2)
    chen = make_user("volunteer", name="陈志愿")
    approve(file(confirmed_claim(served, chen), chen, slot(2, 120)), coordinator)
    now = utcnow()
    coming = projects.create_project(
        {"title": "变废为宝：旧衣回收与垃圾分类宣传", "category": "环境保护", "location": "奉城镇文化活动中心",
         "capacity": 30, "starts_at": now + timedelta(days=4), "ends_at": now + timedelta(days=4, hours=3)},
        actor=coordinator)
    projects.publish(coming, actor=coordinator, publish_at=now - timedelta(minutes=5))
    projects.claim(coming, volunteer=chen)
    shop = merchants.create_merchant({"name": "奉城老街洗车行", "address": "奉城老街 18 号", "category": "car_wash",
                                      "description": ""}, actor=coordinator)
    wash = merchants.create_service(shop, {"name": "精洗一次", "description": "", "price": 2, "daily_quota": 10},
                                    actor=coordinator)
    merchants.create_service(shop, {"name": "打蜡", "description": "", "price": 3, "daily_quota": None},
                             actor=coordinator)
    staff = make_staff(shop, coordinator)
    voucher = merchants.take_voucher(wash, volunteer=chen)
    db.session.commit()
    merchants.redeem(voucher, staff=staff)
    review = reviews.open_review(now.astimezone(local_zone()).year, "年度优秀服务项目评审", by=coordinator)
    reviews.add_candidates(review, [served.id], actor=coordinator)
    reviews.invite_reviewers(review, [coordinator.id], actor=coordinator)
    reviews.score(review, served, 92, reviewer=coordinator)
    reviews.close_review(review, actor=coordinator)
    db.session.commit()
    return coming, shop, chen


def test_coordinator_downloads_a_poster_whose_qr_opens_the_project_and_a_visitor_opens_public(
        phone, live_server, coordinator, make_user, tmp_path, app):
    app.config["POSTER_CACHE_DIR"] = str(tmp_path / "posters")
    project, shop, chen = _town(coordinator, make_user)

    page = phone()
    sign_in(page, ZH, coordinator)
    page.goto(f"/projects/{project.id}")
    with page.expect_download() as download:
        page.get_by_role("button", name="下载分享海报").click()
    saved = tmp_path / "poster.png"
    download.value.save_as(saved)
    poster = Image.open(saved)
    assert poster.size == (1080, 1620)
    assert [r.text for r in zxingcpp.read_barcodes(poster.convert("L"))] == [f"{live_server}/projects/{project.id}"]

    visitor = phone()
    visitor.goto("/")
    expect(visitor.locator("#h-open")).to_be_visible()
    expect(visitor.locator("main")).to_contain_text(project.title)
    visitor.get_by_role("link", name="公示：累计成果").click()
    expect(visitor.locator("main h1")).to_have_text("公示")
    expect(visitor.locator('[data-figure="issued-all"]')).to_have_text("4")
    expect(visitor.locator("main")).to_contain_text("奉城老街洗车行")
    expect(visitor.locator("main")).to_contain_text("健康加油站")
    # Chart.js drew the chart from the canvas's data (the CSP allows no inline script).
    visitor.wait_for_function("() => window.Chart && window.Chart.getChart(document.querySelector('canvas'))")
    assert chen.name not in visitor.locator("body").inner_text()
    check_phone_page(visitor, "public")

    # The share card a chat app reads from the project page.
    visitor.goto(f"/projects/{project.id}")
    image = visitor.locator('meta[property="og:image"]').get_attribute("content")
    assert image == f"{live_server}/projects/{project.id}/poster.png"

    # The volunteer's home page: coins and the project under way.
    home = phone()
    sign_in(home, ZH, chen)
    home.goto("/")
    expect(home.locator("[data-balance]")).to_have_text("2")  # 4 earned, 2 spent at the car wash
    expect(home.locator(".next-project")).to_contain_text("健康加油站")
    expect(home.locator("#h-soon")).to_have_count(0)  # nothing opens later in this town
    check_phone_page(home, "home-volunteer")

    if TAKE_SCREENSHOTS:
        phone.expect_status("/favicon.ico")  # the browser's own image page asks for one
        for name, path in (("poster-project", f"/projects/{project.id}/poster.png"),
                           ("poster-merchant", f"/merchants/{shop.id}/poster.png")):
            visitor.goto(path)
            visitor.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
