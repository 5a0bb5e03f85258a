"""Registration names an organisation only as a request to join; the organisation's coordinators (or an admin)
confirm or decline it, and until then the requester is no member and counts in none of its figures (issue 23.4)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from credits.auth.models import AuditEvent, User
from credits.extensions import db
from tests.conftest import csrf_token

PASSWORD = "gongyi-test-2026"
APPLICANT = {"phone": "13912345678", "password": "correct horse", "name": "王小明"}


@pytest.fixture
def party(make_org):
    return make_org("奉城镇党委", kind="government")


@pytest.fixture
def party_coordinator(make_user, party):
    return make_user("coordinator", name="党委协调员", organization=party)


def register(client, org) -> User:
    response = client.post("/api/v1/auth/register", json={**APPLICANT, "organization_id": org.id})
    assert response.status_code == 201, response.json
    return db.session.get(User, response.json["id"])


def requests_url(org, user=None, action=None) -> str:
    url = f"/api/v1/organizations/{org.id}/requests"
    return f"{url}/{user.id}/{action}" if user else url


def actions() -> list[str]:
    return list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def test_registering_with_an_organisation_only_requests_to_join_it(client, party):
    response = client.post("/api/v1/auth/register", json={**APPLICANT, "organization_id": party.id})

    assert response.status_code == 201, response.json
    assert response.json["organization"] is None
    assert response.json["requested_organization_id"] == party.id
    user = db.session.get(User, response.json["id"])
    assert user.organization_id is None
    assert user.requested_organization_id == party.id and user.organization_requested_at is not None
    assert "user.organization_request" in actions()


def test_registration_page_with_an_organisation_only_requests_to_join_it(client, party):
    page = client.get("/register").get_data(as_text=True)
    assert "申请加入的组织（可选，需该组织协调员确认）" in page

    response = client.post("/register", data={**APPLICANT, "organization_id": str(party.id),
                                              "csrf_token": csrf_token(client, "/register")})

    assert response.status_code == 302
    user = db.session.scalars(select(User)).one()
    assert user.organization_id is None and user.requested_organization_id == party.id
    assert "奉城镇党委（待该组织协调员确认）" in client.get("/account").get_data(as_text=True)


def test_registering_with_an_unknown_organisation_is_refused_on_the_field(client, party):
    response = client.post("/api/v1/auth/register", json={**APPLICANT, "organization_id": party.id + 100})
    assert response.status_code == 422
    assert "organization_id" in response.json["error"]["fields"]
    assert db.session.scalars(select(User)).all() == []


def test_the_organisations_coordinator_sees_the_request_with_a_masked_phone(client, token_for, party,
                                                                           party_coordinator):
    applicant = register(client, party)

    response = client.get(requests_url(party), headers=token_for(party_coordinator))

    assert response.status_code == 200, response.json
    assert response.json["total"] == 1
    item = response.json["items"][0]
    assert (item["id"], item["name"], item["phone"]) == (applicant.id, "王小明", "139****5678")
    assert item["requested_at"]


def test_the_organisations_coordinator_confirms_and_the_requester_becomes_a_member(client, token_for, party,
                                                                                 party_coordinator):
    applicant = register(client, party)

    response = client.post(requests_url(party, applicant, "confirm"), headers=token_for(party_coordinator))

    assert response.status_code == 200, response.json
    assert response.json["organization"]["id"] == party.id
    assert response.json["requested_organization_id"] is None
    db.session.expire_all()
    user = db.session.get(User, applicant.id)
    assert user.organization_id == party.id
    assert user.requested_organization_id is None and user.organization_requested_at is None
    assert "user.organization_confirm" in actions()
    assert client.get(requests_url(party), headers=token_for(party_coordinator)).json["total"] == 0


def test_a_coordinator_of_another_organisation_is_refused_and_changes_nothing(client, token_for, make_org, make_user,
                                                                            party):
    stranger = make_user("coordinator", name="商会协调员", organization=make_org("奉城镇商会"))
    applicant = register(client, party)
    headers = token_for(stranger)

    assert client.get(requests_url(party), headers=headers).status_code == 403
    for action in ("confirm", "decline"):
        response = client.post(requests_url(party, applicant, action), headers=headers)
        assert response.status_code == 403
        assert response.json["error"]["code"] == "forbidden"
    db.session.expire_all()
    user = db.session.get(User, applicant.id)
    assert user.organization_id is None and user.requested_organization_id == party.id


def test_a_volunteer_cannot_confirm_their_own_request(client, token_for, party):
    applicant = register(client, party)
    response = client.post(requests_url(party, applicant, "confirm"),
                           headers=token_for(applicant, APPLICANT["password"]))
    assert response.status_code == 403
    db.session.expire_all()
    assert db.session.get(User, applicant.id).organization_id is None


def test_declining_clears_the_request_and_leaves_the_user_outside(client, token_for, party, party_coordinator):
    applicant = register(client, party)

    response = client.post(requests_url(party, applicant, "decline"), headers=token_for(party_coordinator))

    assert response.status_code == 200, response.json
    db.session.expire_all()
    user = db.session.get(User, applicant.id)
    assert user.organization_id is None and user.requested_organization_id is None
    assert "user.organization_decline" in actions()


def test_confirming_without_a_pending_request_is_404(client, token_for, make_user, party, party_coordinator):
    headers = token_for(party_coordinator)
    outsider = make_user("volunteer", name="未申请的人")
    assert client.post(requests_url(party, outsider, "confirm"), headers=headers).status_code == 404
    applicant = register(client, party)
    assert client.post(requests_url(party, applicant, "decline"), headers=headers).status_code == 200
    for action in ("confirm", "decline"):  # already decided
        response = client.post(requests_url(party, applicant, action), headers=headers)
        assert response.status_code == 404
        assert response.json["error"]["code"] == "not_found"
    db.session.expire_all()
    assert db.session.get(User, applicant.id).organization_id is None


def test_a_request_to_another_organisation_is_not_pending_here(client, token_for, make_org, party,
                                                               party_coordinator):
    applicant = register(client, make_org("奉城镇商会"))
    response = client.post(requests_url(party, applicant, "confirm"), headers=token_for(party_coordinator))
    assert response.status_code == 404
    db.session.expire_all()
    assert db.session.get(User, applicant.id).organization_id is None


def test_an_admin_confirms_a_request_to_any_organisation(client, token_for, make_user, party):
    admin = make_user("admin", name="管理员")
    applicant = register(client, party)
    response = client.post(requests_url(party, applicant, "confirm"), headers=token_for(admin))
    assert response.status_code == 200, response.json
    db.session.expire_all()
    assert db.session.get(User, applicant.id).organization_id == party.id


def test_the_organisations_figures_count_the_requester_only_once_confirmed(client, token_for, party,
                                                                           party_coordinator):
    headers = token_for(party_coordinator)

    def members() -> int:
        body = client.get("/api/v1/reports/organizations", headers=headers).json  # members: now, not a period
        return {row["id"]: row for row in body["items"]}[party.id]["members"]

    assert members() == 0  # the coordinator is no volunteer
    applicant = register(client, party)
    assert members() == 0
    client.post(requests_url(party, applicant, "confirm"), headers=headers)
    assert members() == 1


def test_the_coordinators_page_lists_requests_and_confirms_one(client, login, party, party_coordinator):
    applicant = register(client, party)
    login(party_coordinator)
    url = f"/coordinate/organizations/{party.id}/requests"

    assert url in client.get("/").get_data(as_text=True)  # reachable from the menu
    page = client.get(url).get_data(as_text=True)
    assert "王小明" in page and "139****5678" in page and "13912345678" not in page

    response = client.post(f"{url}/{applicant.id}/confirm", data={"csrf_token": csrf_token(client, url)})

    assert response.status_code == 302 and response.headers["Location"] == url
    db.session.expire_all()
    assert db.session.get(User, applicant.id).organization_id == party.id
    assert "没有待确认的加入申请" in client.get(url).get_data(as_text=True)


def test_the_coordinators_page_declines_one(client, login, party, party_coordinator):
    applicant = register(client, party)
    login(party_coordinator)
    url = f"/coordinate/organizations/{party.id}/requests"

    response = client.post(f"{url}/{applicant.id}/decline", data={"csrf_token": csrf_token(client, url)})

    assert response.status_code == 302
    db.session.expire_all()
    user = db.session.get(User, applicant.id)
    assert user.organization_id is None and user.requested_organization_id is None


def test_the_page_refuses_a_coordinator_of_another_organisation(client, login, make_org, make_user, party):
    stranger = make_user("coordinator", name="商会协调员", organization=make_org("奉城镇商会"))
    applicant = register(client, party)
    login(stranger)
    url = f"/coordinate/organizations/{party.id}/requests"

    assert client.get(url).status_code == 403
    response = client.post(f"{url}/{applicant.id}/confirm", data={"csrf_token": csrf_token(client, "/account")})
    assert response.status_code == 403
    db.session.expire_all()
    assert db.session.get(User, applicant.id).organization_id is None
