"""A form posted after its page or the sign-in expired leads back to where the person was, told why, with what
they typed put back by app.js (tests/e2e: the half-typed project), instead of a bare 400 page."""

from __future__ import annotations

from datetime import timedelta

from credits.extensions import db
from credits.projects import services
from credits.projects.models import Claim
from credits.timeutil import utcnow
from tests.conftest import csrf_token


def open_project(coordinator):
    now = utcnow()
    project = services.create_project(
        {"title": "健康加油站", "category": "健康", "location": "社区服务中心", "capacity": 3,
         "starts_at": now + timedelta(days=1), "ends_at": now + timedelta(days=1, hours=2)}, actor=coordinator)
    services.publish(project, actor=coordinator, publish_at=now - timedelta(minutes=1))
    db.session.commit()
    return project


def test_a_claim_posted_with_an_expired_page_goes_back_to_the_project_and_claims_on_confirming(
        client, login, volunteer, coordinator):
    project = open_project(coordinator)
    login(volunteer)
    page = f"/projects/{project.id}"
    client.get(page)
    stale = client.post(f"/projects/{project.id}/claim", data={"csrf_token": "expired"},
                        headers={"Referer": f"http://localhost{page}"})
    assert stale.status_code == 303 and stale.headers["Location"] == page
    shown = client.get(page).get_data(as_text=True)
    assert "页面已过期" in shown and "data-restore-form" in shown
    assert db.session.query(Claim).count() == 0
    assert "data-restore-form" not in client.get(page).get_data(as_text=True)  # once

    confirmed = client.post(f"/projects/{project.id}/claim", data={"csrf_token": csrf_token(client, page)})
    assert confirmed.status_code == 302
    assert db.session.query(Claim).count() == 1


def test_a_form_posted_after_the_session_ended_leads_through_sign_in_back_to_it(client, login, coordinator,
                                                                               browser):
    stale = browser(coordinator)
    token = csrf_token(stale, "/coordinate/projects/new")
    stale.post("/logout", data={"csrf_token": token})  # the session ends (elsewhere, or by the idle rule)
    response = stale.post("/coordinate/projects/new", data={"title": "啄木鸟", "csrf_token": token},
                          headers={"Referer": "http://localhost/coordinate/projects/new"})
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("/login") and "next=/coordinate/projects/new" in location.replace("%2F", "/")
    assert "登录已过期" in stale.get(location).get_data(as_text=True)
    signed_in = stale.post(location, data={"phone": coordinator.phone, "password": "gongyi-test-2026",
                                           "csrf_token": csrf_token(stale, location)})
    assert signed_in.headers["Location"] == "/coordinate/projects/new"
    assert "data-restore-form" in stale.get("/coordinate/projects/new").get_data(as_text=True)


def test_an_offsite_referer_is_never_where_a_refused_form_leads(client):
    response = client.post("/login", data={"phone": "13800000000", "password": "x", "csrf_token": "bad"},
                           headers={"Referer": "https://evil.example/phish"})
    assert response.status_code == 303 and response.headers["Location"] == "/"


def test_the_api_still_answers_a_bad_token_with_json(client):
    response = client.post("/api/v1/auth/token", json={"phone": "1", "password": "x"})
    assert response.status_code in (401, 422) and response.is_json
