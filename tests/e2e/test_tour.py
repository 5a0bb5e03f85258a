"""A tour of the main pages the journeys do not pass through, in Chromium at phone size, in Chinese and in English:
each role signs in on its own phone and opens its pages, and each page is asserted on what a person reads there
(its heading and some of the world's data) and checked for phone use like the journeys' pages.

The English run also asserts that no Chinese is left on a page but the world's own data: a string the templates
forgot to translate fails it.
"""

from __future__ import annotations

import re
from datetime import timedelta
from types import SimpleNamespace

import pytest

from credits.extensions import db
from credits.hours import services as hours
from credits.ledger.models import SystemAccount, TxKind
from credits.ledger.services import system_account, transfer, user_account
from credits.merchants import services as merchants
from credits.projects import services as projects
from credits.reviews import services as reviews
from credits.settings.services import update_policy
from credits.timeutil import local_day_range, local_zone, utcnow
from tests.e2e.conftest import Words
from tests.e2e.test_journeys import PASSWORD, check, open_site, sign_in
from tests.hours.helpers import approve, confirmed_claim, file, local_day, slot, started_project

try:
    from playwright.sync_api import Page, expect
except ImportError:  # the browser fixture says why, and skips or (on CI) fails
    Page = expect = None

# --- the world the tour visits ---------------------------------------------------------------------------------

# Data of the world that shows on its pages in Chinese whatever the language.
WORLD_TEXT = [
    "变废为宝", "健康加油站", "镇卫生院志愿队", "镇卫生院", "奉城镇社区卫生服务中心", "健康服务", "健康", "环境保护",
    "陈晨", "李协调", "王店员", "管理员", "奉城老街洗车行", "奉城老街 18 号", "精洗一次", "内外精洗",
    "年度优秀服务项目评审（巡览）", "分类讲解细致", "社区表彰奖励", "为社区老人测血压、测血糖。",
]


@pytest.fixture
def world(coordinator, make_user):
    """陈晨 served 变废为宝 yesterday (2 hours, approved: 2 coins) and has a certificate of it; she has a place on next
    week's 健康加油站, 20 coins from the admin and a voucher for 奉城老街洗车行's 精洗一次, whose staff is 王店员.
    This year's review has 变废为宝 as a candidate, scored by 李协调."""
    admin = make_user("admin", name="管理员")
    chen = make_user("volunteer", name="陈晨")
    recycle = started_project(coordinator, title="变废为宝", days_ago=3, block_minutes=60, coins_per_block=1,
                              category="环境保护")
    claim = confirmed_claim(recycle, chen)
    approve(file(claim, chen, slot(1, 120)), coordinator)

    starts = utcnow() + timedelta(days=7)
    health = projects.create_project({
        "title": "健康加油站", "category": "健康服务", "location": "奉城镇社区卫生服务中心",
        "description": "为社区老人测血压、测血糖。", "starts_at": starts, "ends_at": starts + timedelta(hours=3),
        "capacity": 5, "waitlist_capacity": 5}, actor=coordinator)
    projects.publish(health, actor=coordinator, publish_at=utcnow() - timedelta(minutes=1))
    projects.claim(health, volunteer=chen)

    shop = merchants.create_merchant({"name": "奉城老街洗车行", "address": "奉城老街 18 号", "category": "car_wash",
                                      "description": ""}, actor=coordinator)
    staff = merchants.add_staff(shop, {"phone": "13700000005", "name": "王店员", "password": PASSWORD},
                                actor=coordinator)
    wash = merchants.create_service(shop, {"name": "精洗一次", "description": "内外精洗", "price": 2,
                                           "daily_quota": 10}, actor=coordinator)
    transfer(TxKind.ADJUST, system_account(SystemAccount.ISSUANCE), user_account(chen.id), 20, actor=admin,
             memo="社区表彰奖励")
    merchants.take_voucher(wash, volunteer=chen)

    update_policy({"max_active_claims": 5}, actor=admin)
    certificate = hours.issue_certificate(chen, *local_day_range(local_day(7), local_day(0)))

    year = recycle.starts_at.astimezone(local_zone()).year
    review = reviews.open_review(year, "年度优秀服务项目评审（巡览）", by=coordinator)
    reviews.add_candidates(review, [recycle.id], actor=coordinator)
    reviews.invite_reviewers(review, [coordinator.id], actor=coordinator)
    reviews.score(review, recycle, 90, "分类讲解细致", reviewer=coordinator)
    db.session.commit()
    served = local_day(1)
    return SimpleNamespace(admin=admin, chen=chen, coordinator=coordinator, staff=staff, shop=shop,
                           recycle=recycle, health=health, certificate=certificate.number, review=review.id,
                           quarter=(served.year, (served.month - 1) // 3 + 1))


# --- what the tour does on each page ---------------------------------------------------------------------------


def heading(page: Page):
    return page.locator("main h1").first


def visit(page: Page, words: Words, name: str, *, shows: tuple[str, ...] = ()) -> None:
    """The page shows each of `shows` in its main part, has no Chinese left in English but the world's data, and
    passes the phone checks (its screenshot is docs/screenshots/<name>.png)."""
    main = page.locator("main")
    for text in shows:
        expect(main).to_contain_text(text)
    if words.lang == "en":
        text = main.inner_text()
        for data in sorted(WORLD_TEXT, key=len, reverse=True):
            text = text.replace(data, "")
        left = sorted(set(re.findall(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]+", text)))
        assert not left, f"{name}: untranslated in English: {left}"
    check(page, words, name)


def test_a_volunteer_signs_in_and_opens_her_claims_vouchers_certificates_and_account(phone, words, world):
    page = phone()
    open_site(page, words)
    page.locator("header").get_by_role("link", name=words("登录"), exact=True).click()
    expect(heading(page)).to_have_text(words("登录"))
    expect(page.get_by_label(words("手机号"))).to_be_visible()
    visit(page, words, "login")
    page.get_by_label(words("手机号")).fill(world.chen.phone)
    page.get_by_label(words("密码"), exact=True).fill(PASSWORD)
    page.locator("main").get_by_role("button", name=words("登录"), exact=True).click()
    expect(page.locator("main")).to_contain_text(words("您好，%s。", "陈晨"))

    page.goto("/me/claims")
    expect(heading(page)).to_have_text(words("我的认领"))
    claims = page.locator("article.project-card")
    expect(claims).to_have_count(2)
    expect(claims.filter(has_text="健康加油站")).to_contain_text(words("已确认"))
    expect(claims.filter(has_text="变废为宝")).to_contain_text("镇卫生院")
    visit(page, words, "my-claims")

    # From the claim she served: its check-in page offers the manual record for time she forgot to check in.
    claims.filter(has_text="变废为宝").get_by_role("link", name="变废为宝").click()
    page.locator("main").get_by_role("button", name=words("签到 / 签退")).click()
    page.locator("main").get_by_role("link", name=words("忘记签到？补录时长")).click()
    expect(page).to_have_url(re.compile(r"/claims/\d+/hours/new$"))
    expect(heading(page)).to_have_text(words("补录时长"))
    expect(page.locator("main .lead")).to_contain_text("变废为宝")
    expect(page.get_by_label(words("开始时间"))).to_be_visible()
    visit(page, words, "manual-record")

    page.goto("/me/vouchers")
    expect(heading(page)).to_have_text(words("我的兑换券"))
    voucher = page.locator(".voucher-list li").first
    expect(voucher).to_contain_text("精洗一次")
    expect(voucher).to_contain_text("奉城老街洗车行")
    expect(voucher).to_contain_text(words("待使用"))
    visit(page, words, "my-vouchers")

    page.goto("/me/certificates")
    expect(heading(page)).to_have_text(words("志愿服务证明"))
    expect(page.locator("main h2")).to_contain_text([words("已出具的证明")])
    expect(page.locator("main").get_by_role("link", name=world.certificate)).to_be_visible()
    visit(page, words, "certificates")

    page.goto("/account")
    expect(page).to_have_title(re.compile(words("我的账号")))
    expect(heading(page)).to_have_text("陈晨")
    visit(page, words, "account", shows=(world.chen.phone, words("%s 小时", 2)))


def test_the_shop_staff_opens_the_shops_services(phone, words, world):
    page = phone()
    sign_in(page, words, world.staff)
    page.goto("/shop/services")
    expect(heading(page)).to_have_text(words("服务管理"))
    expect(page.locator("main .lead")).to_have_text("奉城老街洗车行")
    wash = page.locator("article.service-edit", has_text="精洗一次")
    expect(wash.get_by_label(words("价格（公益币）"))).to_have_value("2")
    visit(page, words, "shop-services")


def test_a_coordinator_opens_projects_merchants_the_quarter_and_the_review(phone, words, world):
    page = phone()
    sign_in(page, words, world.coordinator)

    page.goto("/coordinate/projects")
    expect(heading(page)).to_have_text(words("组织项目"))
    expect(page.locator("article.project-card", has_text="变废为宝")).to_be_visible()
    expect(page.locator("article.project-card", has_text="健康加油站")).to_be_visible()
    visit(page, words, "desk")

    page.goto("/coordinate/merchants")
    expect(heading(page)).to_have_text(words("商户"))
    visit(page, words, "coordinate-merchants", shows=("奉城老街洗车行",))

    page.locator("main").get_by_role("link", name="奉城老街洗车行").click()
    expect(page).to_have_url(re.compile(rf"/coordinate/merchants/{world.shop.id}$"))
    expect(heading(page)).to_have_text("奉城老街洗车行")
    expect(page.locator("main h2")).to_contain_text([words("服务"), words("店员")])
    visit(page, words, "coordinate-merchant", shows=("精洗一次", "王店员"))

    year, q = world.quarter
    page.goto(f"/reports/quarter?year={year}&q={q}")
    expect(heading(page)).to_have_text(f"{year} 年第 {q} 季度公益服务汇总" if words.lang == "zh_CN"
                                       else f"Public-welfare service, Q{q} {year}")
    visit(page, words, "report-quarter", shows=("变废为宝", "陈晨"))

    page.goto("/coordinate/reviews")
    expect(heading(page)).to_have_text(words("优秀服务项目评审"))
    entry = page.locator("main .plain-list li", has_text="年度优秀服务项目评审（巡览）")
    expect(entry).to_contain_text(words("进行中"))
    visit(page, words, "reviews")

    entry.get_by_role("link", name="年度优秀服务项目评审（巡览）").click()
    expect(heading(page)).to_have_text("年度优秀服务项目评审（巡览）")
    expect(page.locator("main h2")).to_contain_text([words("候选项目"), words("评审人")])
    visit(page, words, "review-detail", shows=("变废为宝", "李协调"))


def test_an_admin_opens_users_policy_and_the_audit_log(phone, words, world):
    page = phone()
    sign_in(page, words, world.admin)

    page.goto("/admin/users")
    expect(heading(page)).to_have_text(words("用户"))
    visit(page, words, "admin-users", shows=("陈晨", world.chen.phone, "王店员"))

    page.goto("/admin/policy")
    expect(heading(page)).to_have_text(words("政策设置"))
    expect(page.get_by_label(words("每人同时进行中的认领上限"))).to_have_value("5")
    visit(page, words, "admin-policy")

    page.goto("/admin/audit")
    expect(heading(page)).to_have_text(words("审计记录"))
    project_created = page.locator("main tbody tr", has_text="project.create").last
    expect(project_created).to_contain_text("李协调")
    visit(page, words, "admin-audit", shows=("hours.file",))
