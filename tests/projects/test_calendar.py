"""The volunteer's calendar feed: confirmed claims as iCalendar (parsed back with the `icalendar` library), with
VALARM reminders; cancelled claims and projects disappear; a revoked or replaced token is a 404."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from icalendar import Calendar

from credits.extensions import db
from credits.projects import services as projects
from credits.timeutil import utcnow
from tests.conftest import csrf_token


@pytest.fixture
def project_in(coordinator):
    def factory(hours: float, title: str):
        now = utcnow()
        project = projects.create_project({
            "title": title, "category": "健康", "location": "奉城镇社区卫生服务中心",
            "starts_at": now + timedelta(hours=hours), "ends_at": now + timedelta(hours=hours + 2),
            "capacity": 5, "waitlist_capacity": 5}, actor=coordinator)
        projects.publish(project, actor=coordinator)
        db.session.commit()
        return project

    return factory


def feed_url(page) -> str:
    assert page.post("/account/calendar", data={"csrf_token": csrf_token(page, "/account")}).status_code == 302
    shown = page.get("/account").get_data(as_text=True)  # the flash: the only time the URL is shown
    return re.search(r"http://localhost(/calendar/[\w-]+\.ics)", shown).group(1)


def events(client, path: str) -> dict[str, object]:
    response = client.get(path)
    assert response.status_code == 200 and response.mimetype == "text/calendar"
    calendar = Calendar.from_ical(response.data)
    return {str(event["summary"]): event for event in calendar.walk("VEVENT")}


def test_the_feed_lists_confirmed_claims_with_alarms_and_drops_cancelled_ones(client, browser, volunteer,
                                                                              project_in, coordinator):
    kept, dropped, called_off, waiting = (project_in(30, "健康加油站"), project_in(50, "变废为宝"),
                                          project_in(70, "啄木鸟行动"), project_in(90, "敬老院探访"))
    claims = {p.title: projects.claim(p, volunteer=volunteer) for p in (kept, dropped, called_off)}
    db.session.commit()
    path = feed_url(browser(volunteer))

    listed = events(client, path)
    assert set(listed) == {"健康加油站", "变废为宝", "啄木鸟行动"}
    event = listed["健康加油站"]
    # iCalendar times are to the second.
    assert event.decoded("dtstart") == kept.starts_at.replace(microsecond=0)
    assert event.decoded("dtend") == kept.ends_at.replace(microsecond=0)
    assert str(event["location"]) == "奉城镇社区卫生服务中心"
    assert sorted(alarm.decoded("trigger") for alarm in event.walk("VALARM")) == [-timedelta(hours=24),
                                                                                   -timedelta(hours=2)]
    assert waiting.title not in listed

    projects.cancel_claim(claims["变废为宝"], actor=volunteer)
    projects.cancel_project(called_off, actor=coordinator)
    db.session.commit()
    assert set(events(client, path)) == {"健康加油站"}


def test_a_revoked_or_replaced_token_is_not_found(client, browser, volunteer):
    page = browser(volunteer)
    first = feed_url(page)
    second = feed_url(page)
    assert client.get(first).status_code == 404
    assert client.get(second).status_code == 200
    page.post("/account/calendar/revoke", data={"csrf_token": csrf_token(page, "/account")})
    assert client.get(second).status_code == 404
    assert client.get("/calendar/not-a-token.ics").status_code == 404


def test_the_token_is_stored_only_as_a_hash(browser, volunteer):
    path = feed_url(browser(volunteer))
    token = path.rsplit("/", 1)[1].removesuffix(".ics")
    db.session.rollback()
    db.session.refresh(volunteer)
    assert volunteer.calendar_token_hash and token not in volunteer.calendar_token_hash


def test_one_volunteers_feed_shows_none_of_anothers_claims(client, browser, make_user, project_in):
    mine, theirs = make_user(name="甲"), make_user(name="乙")
    project = project_in(30, "健康加油站")
    projects.claim(project, volunteer=theirs)
    db.session.commit()
    assert events(client, feed_url(browser(mine))) == {}


def test_making_a_feed_needs_sign_in_and_the_csrf_token(client, browser, volunteer):
    assert client.post("/account/calendar").status_code in (302, 303, 400, 401)
    page = browser(volunteer)
    assert page.post("/account/calendar").status_code == 303  # no CSRF token: back to the page, nothing made
    db.session.rollback()
    db.session.refresh(volunteer)
    assert volunteer.calendar_token_hash is None
