"""Issue 17 in the browser: the demo 两新 organisation's coordinator (赵协调) imports its 30 members from the roster
file, sees the preview (30 to import, no problem) and confirms; then 15 of them open the activation link of their
SMS (the file backend) and set a password. The database then holds 15 activated members and 15 pending, and the
coordinator's participation report shows exactly that: 30 more members, 15 more activated, 8 more party members."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import select

from credits.auth.models import Organization, User
from credits.demo import DEMO_PASSWORD, seed_demo
from credits.extensions import db
from credits.notifications.channels import read_file_backend
from tests.e2e.conftest import check_phone_page

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture says why, and skips or (on CI) fails
    expect = None

ROSTER = Path(__file__).parent / "fixtures" / "demo_roster_30.xlsx"
ORGANIZATION = "海湾宝芳志愿服务中心党支部"  # the demo's 两新 social organisation; 赵协调 coordinates it
COORDINATOR_PHONE = "13900000006"


def activation_links(app) -> dict[str, str]:
    """Each phone's newest activation link, as the person reads it off their phone."""
    path = app.config["SMS_BACKEND"].removeprefix("file:")
    return {text["to"]: re.search(r"https?://\S+/activate/[\w-]+", text["text"]).group()
            for text in read_file_backend(path) if text["kind"] == "activation"}


def participation_row(page, organization: str) -> dict[str, str]:
    """The coordinator's participation report (this year), the row of `organization`: column label → cell text."""
    page.goto("/reports/participation?period=year")
    expect(page.locator("h1")).to_have_text("两新组织参与社区活动")
    headers = page.locator("table.report-table thead th").all_inner_texts()
    row = page.locator("table.report-table tbody tr").filter(has_text=organization)
    expect(row).to_have_count(1)
    return dict(zip([h.strip() for h in headers], [c.strip() for c in row.locator("td").all_inner_texts()],
                    strict=True))


def test_a_coordinator_imports_thirty_members_and_half_of_them_activate(app, phone, sms_texts):
    seed_demo()
    db.session.commit()
    page = phone()
    page.goto("/login")
    page.get_by_label("手机号").fill(COORDINATOR_PHONE)
    page.get_by_label("密码", exact=True).fill(DEMO_PASSWORD)
    page.locator("main").get_by_role("button", name="登录", exact=True).click()
    expect(page.locator("main")).to_contain_text("您好，赵协调。")
    before = participation_row(page, ORGANIZATION)

    page.goto("/coordinate/projects")
    page.locator("main").get_by_role("button", name="导入成员名单").click()
    expect(page.locator("h1")).to_contain_text("导入成员名单")
    check_phone_page(page, "roster-import")
    page.get_by_label("名单文件").set_input_files(ROSTER)
    page.locator("main").get_by_role("button", name="上传并预览").click()
    expect(page.locator("#count-ok")).to_have_text("30")
    expect(page.locator("#count-problems")).to_have_text("0")
    check_phone_page(page, "roster-preview")
    page.locator("main").get_by_role("button", name="确认导入 30 人").click()
    expect(page.locator("main .flash").first).to_contain_text("新建 30 人")

    links = activation_links(app)
    assert len(links) == 30
    member = phone()
    for number, (phone_number, link) in enumerate(sorted(links.items())[:15]):
        member.context.clear_cookies()
        member.goto(link)
        expect(member.locator("h1")).to_have_text("激活账号")
        if number == 0:
            check_phone_page(member, "activate")
        member.get_by_label("设置密码").fill(f"fengcheng-{phone_number[-4:]}-river")
        member.locator("main").get_by_role("button", name="激活并登录").click()
        expect(member.locator("main .flash").first).to_contain_text("账号已激活")

    db.session.rollback()
    org = db.session.scalars(select(Organization).where(Organization.name == ORGANIZATION)).one()
    imported = db.session.scalars(select(User).where(User.organization_id == org.id,
                                                     User.phone.in_(list(links)))).all()
    assert len(imported) == 30
    assert sum(not user.pending_activation for user in imported) == 15
    assert sum(user.pending_activation for user in imported) == 15
    assert all(user.phone_verified_at is not None for user in imported if not user.pending_activation)
    assert sum(user.party_member for user in imported) == 8

    after = participation_row(page, ORGANIZATION)
    check_phone_page(page, "participation-report")
    grew = {label: int(after[label]) - int(before[label]) for label in ("成员", "已激活", "党员")}
    assert grew == {"成员": 30, "已激活": 15, "党员": 8}
