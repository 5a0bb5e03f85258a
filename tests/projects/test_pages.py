"""The project pages, through the browser's eyes: browsing and one-tap claiming with the outcome shown at once,
the countdown to an opening, the coordinator's forms and roster, who may open what, and the demo data."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from html import unescape
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from credits.extensions import db
from credits.projects import services
from credits.projects.models import Claim, ClaimStatus, Project, ProjectStatus
from credits.timeutil import utcnow
from tests.conftest import csrf_token

SHANGHAI = ZoneInfo("Asia/Shanghai")




@pytest.fixture
def org(make_org):
    return make_org("奉城镇党委", kind="government")


@pytest.fixture
def coordinator(make_user, org):
    return make_user("coordinator", name="王协调", organization=org)


@pytest.fixture
def volunteer(make_user, make_org):
    return make_user("volunteer", name="李志愿", organization=make_org("伽蓝集团党委"))


@pytest.fixture
def make_project(coordinator):
    """A project by `coordinator`, published (open now) unless told otherwise, committed."""

    def factory(*, publish: bool = True, publish_at: datetime | None = None, by=None, **overrides) -> Project:
        now = utcnow()
        data = {"title": "健康加油站", "category": "健康服务", "location": "奉城镇社区卫生服务中心",
                "description": "测血压、测血糖", "starts_at": now + timedelta(days=2),
                "ends_at": now + timedelta(days=2, hours=3), "capacity": 2, "waitlist_capacity": 2}
        data.update(overrides)
        project = services.create_project(data, actor=by or coordinator)
        if publish:
            services.publish(project, actor=by or coordinator, publish_at=publish_at)
        db.session.commit()
        return project

    return factory


def text(response) -> str:
    return unescape(response.get_data(as_text=True))


def local_input(value: datetime) -> str:
    return value.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M")


def tap_claim(browser: FlaskClient, project: Project, token: str | None = None):
    """Open the project's page and tap 认领 with the CSRF token the page carries; follow to the outcome."""
    project_id = project.id
    token = token or csrf_token(browser, f"/projects/{project_id}")
    response = browser.post(f"/projects/{project_id}/claim", data={"csrf_token": token})
    assert response.status_code == 302, response.status_code
    assert response.headers["Location"].endswith(f"/projects/{project_id}")
    return browser.get(response.headers["Location"])


def claims_of(project_id: int) -> list[Claim]:
    return db.session.scalars(select(Claim).where(Claim.project_id == project_id).order_by(Claim.id)).all()


def project_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Project))


def move(project: Project, **values) -> None:
    """Move a project in time directly in the database (the services only allow sensible edits)."""
    db.session.execute(update(Project).where(Project.id == project.id).values(**values))
    db.session.commit()


# --- every role sees its pages ------------------------------------------------------------------------------


def test_each_role_sees_its_pages_and_nav_links(client, login, browser, make_user, coordinator, volunteer,
                                                make_project):
    project = make_project()
    draft = make_project(publish=False, title="变废为宝")

    page = text(client.get("/projects"))
    assert "健康加油站" in page and "变废为宝" not in page  # drafts are the organiser's business
    assert 'href="/projects"' in page and "我的认领" not in page and "组织项目" not in page
    assert "登录后认领" in text(client.get(f"/projects/{project.id}"))
    assert client.get("/me/claims").status_code == 302  # sign in first
    assert client.get("/coordinate/projects").status_code == 302

    login(volunteer)
    page = text(client.get("/projects"))
    assert "我的认领" in page and "组织项目" not in page and "立即认领" in page
    assert "立即认领" in text(client.get(f"/projects/{project.id}"))
    assert client.get("/me/claims").status_code == 200

    desk = browser(coordinator)
    page = text(desk.get("/projects"))
    assert "组织项目" in page and "我的认领" not in page and "立即认领" not in page
    assert "变废为宝" in text(desk.get("/coordinate/projects"))
    detail = text(desk.get(f"/projects/{draft.id}"))
    assert "发布" in detail and "开放认领时间" in detail
    for path in ("/coordinate/projects/new", f"/coordinate/projects/{project.id}/edit",
                 f"/coordinate/projects/{draft.id}/edit", f"/coordinate/projects/{project.id}/roster"):
        assert desk.get(path).status_code == 200, path

    admin = browser(make_user("admin"))
    assert admin.get("/projects").status_code == 200
    assert admin.get("/coordinate/projects").status_code == 403


def test_browse_filters_by_category_paginates_and_hides_ended_projects(client, make_project):
    make_project(title="啄木鸟行动", category="文明实践")
    ended = make_project(title="爱心理发服务", category="便民服务")
    move(ended, starts_at=utcnow() - timedelta(days=3), ends_at=utcnow() - timedelta(days=3) + timedelta(hours=2))
    for n in range(3):
        make_project(title=f"健康加油站{n}")

    page = text(client.get("/projects"))
    assert "啄木鸟行动" in page and "爱心理发服务" not in page
    filtered = text(client.get("/projects?category=文明实践"))
    assert "啄木鸟行动" in filtered and "健康加油站" not in filtered
    assert "暂时没有可认领的项目" in text(client.get("/projects?category=为老服务"))

    first = text(client.get("/projects?per_page=2"))
    assert "第 1 / 2 页" in first and "page=2" in first and "per_page=2" in first
    assert client.get("/projects?page=0").status_code == 422
    english = client.get("/projects?lang=en&utm_source=wechat")  # shared links carry extra parameters
    assert english.status_code == 200 and 'lang="en"' in text(english)


def test_empty_list_tells_a_volunteer_what_to_do_next(client, login, volunteer):
    assert "新项目一发布就会出现在这里" in text(client.get("/projects"))
    login(volunteer)
    page = text(client.get("/me/claims"))
    assert "您还没有认领项目" in page and 'href="/projects"' in page


# --- claiming -----------------------------------------------------------------------------------------------


def test_volunteer_claims_with_one_tap_and_sees_the_confirmation(client, login, volunteer, make_project):
    project = make_project()
    login(volunteer)

    page = tap_claim(client, project)

    assert "认领成功" in page.get_data(as_text=True)
    assert "已确认" in text(page)
    [claim] = claims_of(project.id)
    assert claim.status == ClaimStatus.CONFIRMED and claim.volunteer_id == volunteer.id
    assert "取消认领" in text(client.get("/me/claims"))


def test_volunteer_on_a_full_project_is_waitlisted_and_sees_the_position(client, login, make_user, volunteer,
                                                                        make_project):
    project = make_project(capacity=1, waitlist_capacity=3)
    services.claim(project, volunteer=make_user("volunteer", name="张晓明"))
    db.session.commit()
    login(volunteer)

    page = text(tap_claim(client, project))

    assert "您在候补第 1 位" in page
    assert "候补中 · 第 1 位" in text(client.get("/me/claims"))
    assert [c.status for c in claims_of(project.id)] == [ClaimStatus.CONFIRMED, ClaimStatus.WAITLISTED]


def test_refused_claims_are_friendly_flashes_not_error_pages(client, login, make_user, volunteer, make_project):
    full = make_project(capacity=1, waitlist_capacity=0)
    services.claim(full, volunteer=make_user("volunteer"))
    db.session.commit()
    mine = make_project(title="变废为宝")
    login(volunteer)

    page = tap_claim(client, full)
    assert page.status_code == 200 and "名额和候补都已满" in text(page)
    assert len(claims_of(full.id)) == 1

    tap_claim(client, mine)
    again = client.post(f"/projects/{mine.id}/claim", data={"csrf_token": csrf_token(client, "/account")})
    assert again.status_code == 302
    assert "您已经认领过这个项目" in text(client.get(again.headers["Location"]))
    assert len(claims_of(mine.id)) == 1


def test_claim_limit_and_closed_projects_are_explained(client, login, volunteer, make_project, coordinator,
                                                      set_policy):
    set_policy(max_active_claims=1)
    first, second = make_project(title="第一个"), make_project(title="第二个")
    closed = make_project(title="已关闭的")
    services.close(closed, actor=coordinator)
    db.session.commit()
    login(volunteer)

    tap_claim(client, first)
    # From a page opened before the first claim (a fresh one no longer offers the button): the refusal explains.
    assert "在“我的认领”取消不能去的项目" in text(tap_claim(client, second, token=csrf_token(client, "/account")))
    page = text(client.get(f"/projects/{closed.id}"))
    assert "已停止认领" in page and "立即认领" not in page
    assert "该项目现在不接受认领" in text(tap_claim(client, closed, token=csrf_token(client, "/account")))
    assert claims_of(second.id) == [] and claims_of(closed.id) == []


def test_a_suspended_volunteer_is_told_until_when(client, login, volunteer, coordinator, make_project):
    for n in range(3):
        missed = make_project(title=f"缺席{n}")
        claim = services.claim(missed, volunteer=volunteer)
        db.session.commit()
        move(missed, starts_at=utcnow() - timedelta(hours=1))
        services.mark_no_show(claim, actor=coordinator)
        db.session.commit()
    fresh = make_project(title="新项目")
    login(volunteer)

    assert "认领资格暂停至" in text(tap_claim(client, fresh))
    assert claims_of(fresh.id) == []


def test_upcoming_project_counts_down_and_refuses_claims_with_the_opening_time(client, login, volunteer,
                                                                               make_project):
    opens = utcnow() + timedelta(minutes=10)
    project = make_project(publish_at=opens)
    login(volunteer)

    for path in (f"/projects/{project.id}", "/projects"):
        page = text(client.get(path))
        iso = re.search(r'data-countdown="([^"]+)"', page).group(1)
        assert abs(datetime.fromisoformat(iso) - opens) < timedelta(milliseconds=1)
        assert re.search(r'<button type="submit" class="claim-button" disabled data-enable-at="', page)
        assert "即将开放" in page and "js/projects.js" in page

    page = text(tap_claim(client, project))

    assert "还没到开放时间" in page and opens.astimezone(SHANGHAI).strftime("%H:%M") in page
    assert claims_of(project.id) == []


def test_signed_out_tap_goes_to_sign_in_and_back_to_the_project(client, make_project):
    project = make_project()
    response = client.post(f"/projects/{project.id}/claim", data={"csrf_token": csrf_token(client)})
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    back = client.get(f"/projects/{project.id}/claim")
    assert back.status_code == 302 and back.headers["Location"].endswith(f"/projects/{project.id}")
    assert claims_of(project.id) == []


def test_claim_without_csrf_token_is_refused(client, login, volunteer, make_project):
    project = make_project()
    login(volunteer)
    assert client.post(f"/projects/{project.id}/claim").status_code == 303
    assert claims_of(project.id) == []


def test_claims_from_the_page_are_rate_limited_per_user(client, app, login, volunteer, make_project):
    project = make_project()
    login(volunteer)
    token = csrf_token(client, f"/projects/{project.id}")
    limit = int(app.config["CLAIM_RATE_LIMIT"].split()[0])
    statuses = [client.post(f"/projects/{project.id}/claim", data={"csrf_token": token}).status_code
                for _ in range(limit + 1)]
    assert statuses[:limit] == [302] * limit and statuses[limit] == 429
    assert len(claims_of(project.id)) == 1


def test_volunteer_cancels_before_the_start_and_the_first_waitlisted_is_promoted(client, login, make_user,
                                                                                  volunteer, make_project):
    project = make_project(capacity=1, waitlist_capacity=2)
    services.claim(project, volunteer=volunteer)
    waiting = make_user("volunteer", name="张晓明")
    services.claim(project, volunteer=waiting)
    db.session.commit()
    login(volunteer)
    mine = claims_of(project.id)[0]

    response = client.post(f"/claims/{mine.id}/cancel?next=/me/claims",
                           data={"csrf_token": csrf_token(client, "/me/claims")})

    assert response.status_code == 302 and response.headers["Location"].endswith("/me/claims")
    assert "已取消认领" in text(client.get("/me/claims"))
    assert [c.status for c in claims_of(project.id)] == [ClaimStatus.CANCELLED, ClaimStatus.CONFIRMED]


def test_cancel_after_the_start_is_refused_with_a_flash(client, login, volunteer, make_project):
    project = make_project()
    services.claim(project, volunteer=volunteer)
    db.session.commit()
    move(project, starts_at=utcnow() - timedelta(minutes=5))
    login(volunteer)
    claim = claims_of(project.id)[0]
    assert "取消认领" not in text(client.get("/me/claims"))

    response = client.post(f"/claims/{claim.id}/cancel", data={"csrf_token": csrf_token(client, "/account")})

    assert "项目已开始，不能取消认领" in text(client.get(response.headers["Location"]))
    assert claims_of(project.id)[0].status == ClaimStatus.CONFIRMED


def test_nobody_cancels_another_volunteers_claim(client, login, make_user, volunteer, make_project):
    project = make_project()
    services.claim(project, volunteer=make_user("volunteer"))
    db.session.commit()
    login(volunteer)
    other = claims_of(project.id)[0]
    response = client.post(f"/claims/{other.id}/cancel", data={"csrf_token": csrf_token(client, "/account")})
    assert response.status_code == 404
    assert claims_of(project.id)[0].status == ClaimStatus.CONFIRMED


# --- coordinators ---------------------------------------------------------------------------------------------


def project_form(**overrides) -> dict:
    day = (utcnow() + timedelta(days=3)).astimezone(SHANGHAI).date()
    form = {"title": "啄木鸟行动", "category": "文明实践", "description": "发现并上报城市管理问题",
            "location": "奉城老街", "starts_at": f"{day}T08:30", "ends_at": f"{day}T11:30", "capacity": "20",
            "waitlist_capacity": "", "publish_at": "", "block_minutes": "", "coins_per_block": ""}
    form.update(overrides)
    return form


def test_coordinator_creates_edits_publishes_at_a_set_time_closes_and_cancels(client, login, coordinator, org):
    login(coordinator)
    token = csrf_token(client, "/coordinate/projects/new")

    created = client.post("/coordinate/projects/new", data={**project_form(), "csrf_token": token})
    assert created.status_code == 302
    project = db.session.scalars(select(Project)).one()
    assert created.headers["Location"].endswith(f"/projects/{project.id}")
    assert "草稿已保存" in text(client.get(created.headers["Location"]))
    assert (project.status, project.organization_id, project.capacity, project.waitlist_capacity) == (
        ProjectStatus.DRAFT, org.id, 20, 20)
    assert project.starts_at.astimezone(SHANGHAI).strftime("%H:%M") == "08:30"

    edit = f"/coordinate/projects/{project.id}/edit"
    form = text(client.get(edit))
    assert 'value="啄木鸟行动"' in form and f'value="{local_input(project.starts_at)}"' in form
    saved = client.post(edit, data={**project_form(title="啄木鸟行动（老街）", capacity="12", waitlist_capacity="4"),
                                    "csrf_token": token})
    assert saved.status_code == 302
    db.session.refresh(project)
    assert (project.title, project.capacity, project.waitlist_capacity) == ("啄木鸟行动（老街）", 12, 4)
    cleared = client.post(edit, data={**project_form(title="啄木鸟行动（老街）", capacity="12"), "csrf_token": token})
    assert cleared.status_code == 302
    db.session.refresh(project)
    assert project.waitlist_capacity == 12  # blank asks for the default, as on creation and in the API

    opens = (utcnow() + timedelta(days=1)).replace(second=0, microsecond=0)
    published = client.post(f"/coordinate/projects/{project.id}/publish",
                            data={"publish_at": local_input(opens), "csrf_token": token})
    assert published.status_code == 302
    assert "将于" in text(client.get(published.headers["Location"]))
    db.session.refresh(project)
    assert project.status == ProjectStatus.PUBLISHED and project.publish_at == opens

    # once published, only the texts and capacities are offered for editing
    form = text(client.get(edit))
    assert 'name="starts_at"' not in form and 'name="capacity"' in form
    assert client.post(edit, data={"location": "南门广场", "capacity": "15", "waitlist_capacity": "5",
                                   "title": project.title, "csrf_token": token}).status_code == 302

    closed = client.post(f"/coordinate/projects/{project.id}/close", data={"csrf_token": token})
    assert "已停止认领" in text(client.get(closed.headers["Location"]))
    db.session.refresh(project)
    assert (project.status, project.location, project.capacity) == (ProjectStatus.CLOSED, "南门广场", 15)

    client.post("/coordinate/projects/new", data={**project_form(title="变废为宝"), "csrf_token": token})
    other = db.session.scalars(select(Project).where(Project.title == "变废为宝")).one()
    client.post(f"/coordinate/projects/{other.id}/publish", data={"publish_at": "", "csrf_token": token})
    cancelled = client.post(f"/coordinate/projects/{other.id}/cancel", data={"csrf_token": token})
    assert "项目已取消" in text(client.get(cancelled.headers["Location"]))
    db.session.refresh(other)
    assert other.status == ProjectStatus.CANCELLED and other.publish_at <= utcnow()

    desk = text(client.get("/coordinate/projects"))
    assert "啄木鸟行动（老街）" in desk and "变废为宝" in desk
    assert "变废为宝" in text(client.get("/coordinate/projects?status=cancelled"))
    assert "变废为宝" not in text(client.get("/coordinate/projects?status=closed"))


def test_refused_coordinator_actions_come_back_as_flashes(client, login, coordinator, make_project):
    project = make_project()
    login(coordinator)
    token = csrf_token(client, "/account")
    assert client.post(f"/coordinate/projects/{project.id}/cancel", data={"csrf_token": token}).status_code == 302
    repeat = client.post(f"/coordinate/projects/{project.id}/cancel", data={"csrf_token": token})
    assert "该项目不能再取消" in text(client.get(repeat.headers["Location"]))
    closing = client.post(f"/coordinate/projects/{project.id}/close", data={"csrf_token": token})
    assert "只有已发布的项目可以关闭" in text(client.get(closing.headers["Location"]))


@pytest.mark.parametrize("changes, field", [
    ({"starts_at": "2030-05-01T10:00", "ends_at": "2030-05-01T09:00"}, "结束时间必须晚于开始时间"),
    ({"title": ""}, 'id="e-title"'),
    ({"capacity": "0"}, 'id="e-capacity"'),
    ({"capacity": "many"}, 'id="e-capacity"'),
    ({"starts_at": "tomorrow morning"}, 'id="e-starts_at"'),
])
def test_bad_new_project_input_rerenders_with_422_and_creates_nothing(client, login, coordinator, changes, field):
    login(coordinator)
    response = client.post("/coordinate/projects/new", data={**project_form(**changes),
                                                              "csrf_token": csrf_token(client, "/account")})
    assert response.status_code == 422
    page = text(response)
    assert field in page and 'value="奉城老街"' in page  # what was typed is kept
    assert project_count() == 0


def test_every_refusal_of_a_project_form_shows_at_once_and_an_empty_field_asks_to_be_filled(client, login,
                                                                                           coordinator):
    login(coordinator)
    response = client.post("/coordinate/projects/new", data={
        **project_form(title="", capacity="0", starts_at="2030-05-01T10:00", ends_at="2030-05-01T09:00"),
        "csrf_token": csrf_token(client, "/account")})
    assert response.status_code == 422
    page = text(response)
    # The empty title, the capacity and the period are all named in one answer, not one per try.
    assert 'id="e-title"' in page and "请填写此项" in page
    assert 'id="e-capacity"' in page and "结束时间必须晚于开始时间" in page
    assert project_count() == 0


def test_bad_edits_and_publish_times_rerender_with_422_and_change_nothing(client, login, make_user, coordinator,
                                                                          make_project):
    project = make_project(capacity=3)
    for _ in range(2):
        services.claim(project, volunteer=make_user("volunteer"))
    draft = make_project(publish=False, title="变废为宝")
    db.session.commit()
    login(coordinator)
    token = csrf_token(client, "/account")
    edit = f"/coordinate/projects/{project.id}/edit"

    below = client.post(edit, data={"title": project.title, "capacity": "1", "csrf_token": token})
    assert below.status_code == 422 and "名额不能少于已确认的人数" in text(below)
    moved = client.post(edit, data={"starts_at": "2030-05-01T09:00", "csrf_token": token})
    assert moved.status_code == 422 and "项目发布后只能修改" in text(moved)
    bad_time = client.post(f"/coordinate/projects/{draft.id}/publish", data={"publish_at": "soon",
                                                                             "csrf_token": token})
    assert bad_time.status_code == 422 and 'id="e-publish_at"' in text(bad_time)
    twice = client.post(f"/coordinate/projects/{project.id}/publish", data={"publish_at": "", "csrf_token": token})
    assert twice.status_code == 422 and "只有草稿可以发布" in text(twice)

    db.session.refresh(project)
    db.session.refresh(draft)
    assert (project.capacity, project.title, project.confirmed_count) == (3, "健康加油站", 2)
    assert draft.status == ProjectStatus.DRAFT and draft.publish_at is None


def test_volunteer_cannot_open_coordinator_pages(client, login, volunteer, make_project):
    project = make_project()
    login(volunteer)
    for path in ("/coordinate/projects", "/coordinate/projects/new", f"/coordinate/projects/{project.id}/edit",
                 f"/coordinate/projects/{project.id}/roster"):
        assert client.get(path).status_code == 403, path
    token = csrf_token(client, "/account")
    for action in ("publish", "close", "cancel"):
        assert client.post(f"/coordinate/projects/{project.id}/{action}",
                           data={"csrf_token": token}).status_code == 403
    assert "管理" not in re.sub(r"<header.*?</header>", "", text(client.get(f"/projects/{project.id}")), flags=re.S)
    db.session.refresh(project)
    assert project.status == ProjectStatus.PUBLISHED


def test_coordinator_of_another_organisation_cannot_see_a_draft_or_the_roster(client, login, make_user, make_org,
                                                                              volunteer, make_project):
    draft = make_project(publish=False, title="变废为宝")
    published = make_project()
    services.claim(published, volunteer=volunteer)
    db.session.commit()
    stranger = make_user("coordinator", organization=make_org("海湾宝芳志愿服务中心党支部"))
    login(stranger)
    token = csrf_token(client, "/account")

    assert client.get(f"/projects/{draft.id}").status_code == 404
    assert client.get(f"/coordinate/projects/{draft.id}/edit").status_code == 404
    assert client.get(f"/coordinate/projects/{draft.id}/roster").status_code == 404
    assert client.post(f"/coordinate/projects/{draft.id}/publish", data={"csrf_token": token}).status_code == 404
    assert client.get(f"/coordinate/projects/{published.id}/roster").status_code == 403
    assert client.get(f"/coordinate/projects/{published.id}/edit").status_code == 403
    assert client.post(f"/coordinate/projects/{published.id}/close", data={"csrf_token": token}).status_code == 403
    assert client.post(f"/coordinate/projects/{published.id}/edit",
                       data={"title": "改名", "csrf_token": token}).status_code == 403
    claim = claims_of(published.id)[0]
    assert client.post(f"/claims/{claim.id}/no-show", data={"csrf_token": token}).status_code == 404

    page = text(client.get("/coordinate/projects"))
    assert "还没有项目" in page and "健康加油站" not in page
    detail = text(client.get(f"/projects/{published.id}"))
    assert "认领名单" not in detail and "停止认领" not in detail
    db.session.refresh(published)
    assert (published.status, published.title) == (ProjectStatus.PUBLISHED, "健康加油站")


def test_roster_lists_confirmed_then_waitlist_in_order_and_marks_no_shows(client, login, make_user, coordinator,
                                                                          make_project):
    project = make_project(capacity=2, waitlist_capacity=3)
    names = ["甲志愿", "乙志愿", "丙志愿", "丁志愿", "戊志愿"]
    people = [make_user("volunteer", name=name) for name in names]
    claims = [services.claim(project, volunteer=person) for person in people]
    db.session.commit()
    services.cancel_claim(claims[0], actor=people[0])  # 丙 is promoted; 丁 and 戊 wait, in that order
    db.session.commit()
    login(coordinator)

    page = text(client.get(f"/coordinate/projects/{project.id}/roster"))
    assert sorted(names, key=page.find) == ["乙志愿", "丙志愿", "丁志愿", "戊志愿", "甲志愿"]
    sections = ["已确认（按认领先后）", "乙志愿", "候补（按排队顺序）", "丁志愿"]
    assert sorted(sections, key=page.find) == sections
    assert "候补 1" in page and "候补 2" in page and page.find("已取消") < page.find("甲志愿")
    assert "标记缺席</button>" not in page  # not before the project has started

    move(project, starts_at=utcnow() - timedelta(hours=1))
    page = text(client.get(f"/coordinate/projects/{project.id}/roster"))
    assert page.count("标记缺席</button>") == 2
    absent = next(c for c in claims_of(project.id) if c.volunteer_id == people[1].id)
    response = client.post(f"/claims/{absent.id}/no-show", data={"csrf_token": csrf_token(client, "/account")})
    assert response.status_code == 302
    page = text(client.get(response.headers["Location"]))
    assert "已将 乙志愿 标记为缺席" in page
    assert page.find("丙志愿") < page.find("缺席</h2>") < page.find("乙志愿</strong>")
    db.session.refresh(absent)
    assert absent.status == ClaimStatus.NO_SHOW


# --- demo data ------------------------------------------------------------------------------------------------


def test_demo_seed_creates_projects_in_every_state_and_the_ledger_stays_clean(runner, client, login):
    from credits.auth.models import User
    from credits.demo import DEMO_PASSWORD

    result = runner.invoke(args=["credits", "seed-demo"])
    assert result.exit_code == 0 and "demo data loaded" in result.output, result.output
    now = utcnow()
    projects = {p.title: p for p in db.session.scalars(select(Project))}
    assert {"健康加油站", "变废为宝", "啄木鸟行动", "“365”关爱空巢老人", "爱心理发服务"} <= set(projects)
    statuses = {p.status for p in projects.values()}
    assert statuses == {"draft", "published", "closed", "cancelled"}
    published = [p for p in projects.values() if p.status == ProjectStatus.PUBLISHED]
    assert any(p.ends_at < now for p in published), "an ended project"
    assert any(p.publish_at > now and p.publish_at - now <= timedelta(minutes=10) for p in published)
    assert any(p.is_open(now) and 0 < p.confirmed_count < p.capacity for p in published), "open with places"
    assert any(p.is_open(now) and p.confirmed_count == p.capacity and p.waitlist_count > 0 for p in published)
    for p in projects.values():
        rows = dict(db.session.execute(select(Claim.status, func.count()).where(Claim.project_id == p.id)
                                       .group_by(Claim.status)).all())
        assert p.confirmed_count == rows.get("confirmed", 0) + rows.get("no_show", 0), p.title
        assert p.waitlist_count == rows.get("waitlisted", 0), p.title
    assert db.session.scalar(select(func.count()).select_from(Claim).where(Claim.status == "no_show")) >= 1
    assert db.session.scalar(select(func.count()).select_from(Claim).where(Claim.status == "cancelled")) >= 1

    again = runner.invoke(args=["credits", "seed-demo"])
    assert "already present" in again.output and project_count() == len(projects)
    ledger = runner.invoke(args=["credits", "verify-ledger"])
    assert ledger.exit_code == 0 and "ledger ok" in ledger.output, ledger.output

    # 李志愿's and 张晓明's coins are what their approved hours earned: no coins without hours (issue 21, item 8).
    from credits.ledger.models import Account, Transaction

    for phone in ("13900000003", "13900000004"):
        person = db.session.scalars(select(User).where(User.phone == phone)).one()
        account = db.session.scalars(select(Account).where(Account.user_id == person.id)).one()
        assert person.approved_minutes >= 12 * 60, person.name
        assert db.session.scalar(select(func.count()).select_from(Transaction).where(
            Transaction.kind == "adjust")) == 0
        assert 0 < account.balance <= person.approved_minutes // 60 * 10, person.name

    login(db.session.scalars(select(User).where(User.phone == "13900000003")).one(), password=DEMO_PASSWORD)
    page = text(client.get("/me/claims"))
    assert "候补中 · 第 1 位" in page and "已确认" in page
    assert "啄木鸟行动" in text(client.get("/projects"))


# --- today first ----------------------------------------------------------------------------------------------


def titles_in(page: str, titles: list[str]) -> list[str]:
    """The titles as the page lists them, top to bottom."""
    return sorted(titles, key=lambda t: page.find(f">{t}</a>"))


def test_the_desk_lists_todays_projects_first_marked_today(client, login, coordinator, make_project):
    now = utcnow()
    make_project(title="下周项目", starts_at=now + timedelta(days=7), ends_at=now + timedelta(days=7, hours=2))
    make_project(title="今天的项目", starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=1))
    cancelled = make_project(title="今天取消的项目", starts_at=now - timedelta(hours=1),
                             ends_at=now + timedelta(hours=2))
    services.cancel_project(cancelled, actor=coordinator)
    past = make_project(title="上周项目")
    db.session.commit()
    move(past, starts_at=now - timedelta(days=7), ends_at=now - timedelta(days=7) + timedelta(hours=2))
    login(coordinator)

    page = text(client.get("/coordinate/projects"))

    assert titles_in(page, ["下周项目", "今天的项目", "今天取消的项目", "上周项目"]) == [
        "今天的项目", "下周项目", "今天取消的项目", "上周项目"]
    assert page.count('class="badge badge-today"') == 1
    card = page[page.find(">今天的项目</a>"):page.find(">下周项目</a>")]
    assert "今天" in card and "/checkin" in card  # the check-in screen, one tap away
    assert page.count("/checkin") == 1


def test_my_claims_puts_todays_confirmed_claim_first_with_a_checkin_button(client, login, volunteer,
                                                                            make_project):
    now = utcnow()
    later = make_project(title="下周项目", starts_at=now + timedelta(days=7), ends_at=now + timedelta(days=7, hours=2))
    today = make_project(title="今天的项目", starts_at=now + timedelta(minutes=10), ends_at=now + timedelta(hours=1))
    for project in (later, today):
        services.claim(project, volunteer=volunteer)
    db.session.commit()
    move(today, starts_at=now - timedelta(hours=1))  # under way now
    login(volunteer)

    page = text(client.get("/me/claims"))

    assert titles_in(page, ["下周项目", "今天的项目"]) == ["今天的项目", "下周项目"]
    assert page.count('class="badge badge-today"') == 1
    assert page.count("/checkin/") == 1 and f'href="/checkin/{today.id}"' in page
    assert client.get(f"/checkin/{today.id}").status_code == 200


def test_a_project_today_that_has_ended_stays_first_but_offers_no_checkin(client, login, volunteer, make_project):
    now = utcnow()
    later = make_project(title="下周项目", starts_at=now + timedelta(days=7), ends_at=now + timedelta(days=7, hours=2))
    ended = make_project(title="刚结束的项目", starts_at=now + timedelta(minutes=10), ends_at=now + timedelta(hours=1))
    for project in (later, ended):
        services.claim(project, volunteer=volunteer)
    db.session.commit()
    start_of_day = now.astimezone(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0)
    move(ended, starts_at=start_of_day, ends_at=min(now, start_of_day + timedelta(minutes=1)))
    login(volunteer)

    page = text(client.get("/me/claims"))

    assert titles_in(page, ["下周项目", "刚结束的项目"]) == ["刚结束的项目", "下周项目"]
    assert "/checkin/" not in page


# --- labels that go stale (issue 21, item 6) ------------------------------------------------------------------


def test_arrive_by_is_said_only_before_the_start(client, login, volunteer, make_project):
    project = make_project()
    services.claim(project, volunteer=volunteer)
    db.session.commit()
    login(volunteer)
    assert "前到达" in text(client.get(f"/projects/{project.id}"))

    now = utcnow()
    move(project, starts_at=now - timedelta(minutes=30), ends_at=now + timedelta(hours=2))
    page = text(client.get(f"/projects/{project.id}"))
    assert "前到达" not in page and "项目进行中：到达奉城镇社区卫生服务中心后请签到。" in page

    move(project, starts_at=now - timedelta(hours=3), ends_at=now - timedelta(hours=1))
    page = text(client.get(f"/projects/{project.id}"))
    assert "前到达" not in page and "项目已结束" in page


def test_an_upcoming_badge_carries_its_opening_for_the_page_to_turn_it(client, make_project):
    opens = utcnow() + timedelta(minutes=5)
    project = make_project(publish_at=opens)
    page = text(client.get(f"/projects/{project.id}"))
    assert 'class="badge badge-upcoming" data-opens-at=' in page and 'data-open-label="认领中"' in page


def test_the_claim_limit_shows_before_tapping(client, login, volunteer, make_project, set_policy):
    """Issue 21, item 7: a volunteer at max_active_claims learned it only from the refusal after tapping."""
    set_policy(max_active_claims=1)
    first, second = make_project(title="第一个"), make_project(title="第二个")
    login(volunteer)
    page = text(client.get(f"/projects/{second.id}"))
    assert "立即认领" in page and "已达认领上限" not in page

    tap_claim(client, first)
    for path in (f"/projects/{second.id}", "/projects"):
        page = text(client.get(path))
        assert "已达认领上限" in page and "您已有 1 个进行中的认领（上限）" in page, path
    assert f'action="/projects/{second.id}/claim"' not in text(client.get(f"/projects/{second.id}"))
