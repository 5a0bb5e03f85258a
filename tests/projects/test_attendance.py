"""A volunteer who showed up cannot be marked absent (issue 21, item 1): the rule in the service, so the page and
the API agree; the roster shows who checked in and out, and its feed serves the same, live."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from credits.auth.models import User
from credits.errors import DomainError
from credits.extensions import db
from credits.hours import services as hours
from credits.projects import services as projects
from credits.projects.models import Claim, ClaimStatus
from tests.conftest import csrf_token
from tests.hours.helpers import Clock, approve, at, confirmed_claim, file, slot, started_project
from tests.races import race


@pytest.fixture
def clock(monkeypatch):
    clock = Clock(at(0, 0) + timedelta(hours=3))  # early today: the project has started, the day is young
    monkeypatch.setattr(hours, "utcnow", clock)
    return clock


@pytest.fixture
def project(coordinator):
    return started_project(coordinator, days_ago=2)


@pytest.fixture
def claim(project, volunteer):
    return confirmed_claim(project, volunteer)


def no_show_refused(claim, coordinator) -> DomainError:
    with pytest.raises(DomainError) as info:
        projects.mark_no_show(claim, actor=coordinator)
    db.session.rollback()
    db.session.refresh(claim)
    assert claim.status == ClaimStatus.CONFIRMED and claim.no_show_at is None
    return info.value


def test_no_show_is_refused_while_the_volunteer_is_checked_in(claim, project, volunteer, coordinator, clock):
    hours.check_in(claim, clock.code(project), volunteer=volunteer)
    db.session.commit()
    error = no_show_refused(claim, coordinator)
    assert (error.code, error.status) == ("invalid_state", 409)
    assert "已签到" in str(error.message)


def test_no_show_is_refused_after_check_out(claim, project, volunteer, coordinator, clock):
    hours.check_in(claim, clock.code(project), volunteer=volunteer)
    db.session.commit()
    clock.advance(hours=2)
    hours.check_out(claim, clock.code(project), volunteer=volunteer)
    db.session.commit()
    no_show_refused(claim, coordinator)


def test_no_show_is_refused_after_a_check_in_that_lapsed(claim, project, volunteer, coordinator, clock):
    hours.check_in(claim, clock.code(project), volunteer=volunteer)
    db.session.commit()
    assert hours.lapse_open_checkins(now=clock.advance(hours=13)) == 1
    db.session.commit()
    no_show_refused(claim, coordinator)


def test_no_show_is_refused_with_approved_hours_but_allowed_with_only_pending_ones(project, make_user,
                                                                                  coordinator):
    approved_one, pending_one = make_user("volunteer"), make_user("volunteer")
    approved_claim, pending_claim = confirmed_claim(project, approved_one), confirmed_claim(project, pending_one)
    approve(file(approved_claim, approved_one, slot(1, 90)), coordinator)
    file(pending_claim, pending_one, slot(1, 90))

    no_show_refused(approved_claim, coordinator)
    projects.mark_no_show(pending_claim, actor=coordinator)
    db.session.commit()
    assert pending_claim.status == ClaimStatus.NO_SHOW


def test_api_and_page_refuse_the_no_show_of_a_checked_in_volunteer(client, login, token_for, claim, project,
                                                                   volunteer, coordinator, clock):
    hours.check_in(claim, clock.code(project), volunteer=volunteer)
    db.session.commit()
    response = client.post(f"/api/v1/claims/{claim.id}/no-show", headers=token_for(coordinator))
    assert response.status_code == 409 and response.json["error"]["code"] == "invalid_state"

    login(coordinator)
    response = client.post(f"/claims/{claim.id}/no-show", data={"csrf_token": csrf_token(client, "/account")})
    assert response.status_code == 302
    assert "不能标记缺席" in client.get(response.headers["Location"]).get_data(as_text=True)
    db.session.refresh(claim)
    assert claim.status == ClaimStatus.CONFIRMED


def test_roster_and_its_feed_show_check_in_and_out_and_hide_no_show_for_who_came(client, login, project,
                                                                                 make_user, coordinator, clock):
    came, away = make_user("volunteer", name="来了的"), make_user("volunteer", name="没来的")
    came_claim, away_claim = confirmed_claim(project, came), confirmed_claim(project, away)
    login(coordinator)
    feed = client.get(f"/coordinate/projects/{project.id}/roster/live")
    assert feed.status_code == 200 and feed.headers["Cache-Control"] == "no-store"
    assert feed.json["html"].count("未签到") == 2 and feed.json["confirmed"] == 2

    hours.check_in(came_claim, clock.code(project), volunteer=came)
    db.session.commit()
    html = client.get(f"/coordinate/projects/{project.id}/roster/live").json["html"]
    assert html.count("已签到 ") == 1 and html.count("未签到") == 1
    assert f"/claims/{came_claim.id}/no-show" not in html and f"/claims/{away_claim.id}/no-show" in html

    clock.advance(minutes=90)
    hours.check_out(came_claim, clock.code(project), volunteer=came)
    db.session.commit()
    page = client.get(f"/coordinate/projects/{project.id}/roster").get_data(as_text=True)
    assert "已签退 " in page and "data-roster-feed" in page


def test_roster_feed_is_for_the_projects_coordinators_only(client, login, project, make_user, make_org, volunteer):
    login(volunteer)
    assert client.get(f"/coordinate/projects/{project.id}/roster/live").status_code == 403
    login(make_user("coordinator", organization=make_org("别的组织")))
    assert client.get(f"/coordinate/projects/{project.id}/roster/live").status_code == 403


@pytest.mark.slow
@pytest.mark.usefixtures("retries")
def test_check_in_racing_a_no_show_ends_one_way(app, project, make_user, coordinator, clock):
    """Checked in and absent never both: whichever commits first decides, the other is refused."""
    outcomes, coordinator_id = Counter(), coordinator.id
    for _ in range(6):
        volunteer = make_user("volunteer")
        claim_id, volunteer_id = confirmed_claim(project, volunteer).id, volunteer.id
        code = clock.code(project)

        def checking_in(claim_id=claim_id, volunteer_id=volunteer_id, code=code):
            hours.check_in(db.session.get(Claim, claim_id), code, volunteer=db.session.get(User, volunteer_id))
            return "checked in"

        def marking_absent(claim_id=claim_id):
            projects.mark_no_show(db.session.get(Claim, claim_id), actor=db.session.get(User, coordinator_id))
            return "absent"

        results, _ = race(app, [checking_in, marking_absent])
        assert sorted(map(str, results)) in (["checked in", "invalid_state"], ["absent", "invalid_state"]), results
        claim = db.session.get(Claim, claim_id)
        db.session.refresh(claim)
        outcomes["checked in" if "checked in" in results else "absent"] += 1
        assert (claim.status == ClaimStatus.NO_SHOW) == ("absent" in results)
        assert projects.attended(claim) == ("checked in" in results)
    print(f"\n[race] check-in vs no-show outcomes: {dict(outcomes)}")
