"""The home page (issue 18.4): a volunteer's coins, next confirmed project with a countdown and the projects opening
soon; signed-out visitors see the projects open now."""

from __future__ import annotations

from datetime import timedelta

from credits.extensions import db
from credits.projects import services as projects
from credits.timeutil import utcnow
from tests.merchants.helpers import give


def _project(coordinator, title, *, starts_in, opens_in=None, capacity=10):
    now = utcnow()
    project = projects.create_project(
        {"title": title, "category": "健康服务", "location": "奉城镇", "capacity": capacity,
         "starts_at": now + starts_in, "ends_at": now + starts_in + timedelta(hours=2)}, actor=coordinator)
    if opens_in is not False:
        projects.publish(project, actor=coordinator,
                         publish_at=now + opens_in if opens_in is not None else now - timedelta(minutes=1))
    db.session.commit()
    return project


def test_signed_out_visitors_see_the_projects_open_now(client, coordinator):
    _project(coordinator, "健康加油站", starts_in=timedelta(days=2))
    _project(coordinator, "草稿不公开", starts_in=timedelta(days=2), opens_in=False)
    _project(coordinator, "啄木鸟行动", starts_in=timedelta(days=5), opens_in=timedelta(days=1))
    page = client.get("/").get_data(as_text=True)
    assert "正在招募" in page and "健康加油站" in page
    assert "即将开放认领" in page and "啄木鸟行动" in page
    assert "草稿不公开" not in page
    assert "注册成为志愿者" in page


def test_a_volunteer_sees_coins_next_confirmed_project_with_countdown_and_opening_soon(
        client, login, coordinator, volunteer):
    later = _project(coordinator, "变废为宝", starts_in=timedelta(days=6))
    sooner = _project(coordinator, "健康加油站", starts_in=timedelta(days=2))
    cancelled = _project(coordinator, "取消了的项目", starts_in=timedelta(days=1))
    _project(coordinator, "啄木鸟行动", starts_in=timedelta(days=5), opens_in=timedelta(hours=3))
    for project in (later, sooner, cancelled):
        projects.claim(project, volunteer=volunteer)
    projects.cancel_project(cancelled, actor=coordinator)
    give(volunteer, 17)
    db.session.commit()
    login(volunteer)
    page = client.get("/").get_data(as_text=True)
    assert "data-balance>17<" in page
    next_box = page[page.index('id="h-next"'):page.index("</article>", page.index('id="h-next"'))]
    assert "健康加油站" in next_box and "变废为宝" not in next_box and "取消了的项目" not in next_box
    assert 'data-countdown="' in next_box
    soon = page[page.index('id="h-soon"'):]
    assert "啄木鸟行动" in soon


def test_a_volunteer_without_a_project_is_sent_to_claim_one(client, login, volunteer):
    login(volunteer)
    page = client.get("/").get_data(as_text=True)
    assert "您还没有待参加的项目" in page and "data-balance>0<" in page
