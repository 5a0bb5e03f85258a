"""An organisation's members (SPEC 2.8, issue 17.4): the list its coordinators read with each member's
participation, removing a member (whose hours and coins stay theirs), and moving between organisations with the
person asking and the new organisation's coordinators confirming."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from credits.auth import members, services
from credits.auth.models import AuditEvent, Organization, User
from credits.extensions import db
from credits.ledger.services import user_account
from tests.conftest import csrf_token
from tests.hours.helpers import approve, confirmed_claim, file, slot, started_project
from tests.races import race


def url(org, member=None) -> str:
    base = f"/api/v1/organizations/{org.id}/members"
    return f"{base}/{member.id}" if member else base


def events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


@pytest.fixture
def served(make_user, org, coordinator):
    """A party member of `org` with 150 approved minutes (and their coins) on one project, and a claim on a
    second; an imported member still pending activation; a member of another organisation."""
    member = make_user(name="李志愿", organization=org)
    member.party_member = True
    health = started_project(coordinator, title="健康加油站", block_minutes=60, coins_per_block=2)
    other = started_project(coordinator, title="变废为宝")
    coins = approve(file(confirmed_claim(health, member), member, slot(3, 150)), coordinator)
    confirmed_claim(other, member)
    pending = make_user(name="王待激活", organization=org)
    pending.pending_activation = True
    db.session.commit()
    return {"member": member, "pending": pending, "coins": coins}


def test_the_coordinator_lists_members_with_hours_projects_last_activity_and_activation(
        client, token_for, org, coordinator, served):
    response = client.get(url(org), headers=token_for(coordinator))

    assert response.status_code == 200, response.json
    rows = {row["name"]: row for row in response.json["items"]}
    assert response.json["total"] == 3 and set(rows) == {"李志愿", "王待激活", "李协调"}
    member = rows["李志愿"]
    assert member["approved_minutes"] == 150 and member["projects"] == 2
    assert member["party_member"] is True and member["pending_activation"] is False
    assert member["phone"] == served["member"].phone and member["volunteer_no"].startswith("FC")
    assert member["last_activity_at"] is not None
    assert rows["王待激活"]["pending_activation"] is True and rows["王待激活"]["last_activity_at"] is None
    assert rows["王待激活"]["projects"] == 0 and rows["王待激活"]["party_member"] is False


def test_members_are_paginated_and_searchable_by_name_or_part_of_a_phone(client, token_for, org, coordinator,
                                                                        served):
    headers = token_for(coordinator)
    first = client.get(url(org), headers=headers, query_string={"per_page": 2}).json
    second = client.get(url(org), headers=headers, query_string={"per_page": 2, "page": 2}).json
    assert first["total"] == second["total"] == 3
    assert len(first["items"]) == 2 and len(second["items"]) == 1
    assert {r["id"] for r in first["items"]}.isdisjoint({r["id"] for r in second["items"]})

    by_name = client.get(url(org), headers=headers, query_string={"q": "待激活"}).json
    assert [r["name"] for r in by_name["items"]] == ["王待激活"]
    by_phone = client.get(url(org), headers=headers, query_string={"q": served["member"].phone[-6:]}).json
    assert [r["name"] for r in by_phone["items"]] == ["李志愿"]
    wildcard = client.get(url(org), headers=headers, query_string={"q": "%"}).json
    assert wildcard["total"] == 0


def test_another_organisations_coordinator_and_volunteers_are_refused_the_list(
        client, token_for, make_user, make_org, org, served):
    stranger = make_user("coordinator", name="别家协调", organization=make_org("奉城商会"))
    assert client.get(url(org), headers=token_for(stranger)).status_code == 403
    assert client.get(url(org), headers=token_for(served["member"])).status_code == 403
    admin = make_user("admin", name="管理员")
    assert client.get(url(org), headers=token_for(admin)).status_code == 200
    assert client.get("/api/v1/organizations/999999/members", headers=token_for(admin)).status_code == 404
    assert client.get(url(org), headers=token_for(admin), query_string={"per_page": 1000}).status_code == 422


def test_removing_a_member_keeps_their_hours_coins_and_records(client, token_for, org, coordinator, served):
    member = served["member"]
    balance = user_account(member.id).balance
    db.session.commit()
    assert balance == served["coins"] > 0

    response = client.delete(url(org, member), headers=token_for(coordinator))

    assert response.status_code == 204, response.json
    member = db.session.get(User, member.id)
    assert member.organization_id is None
    assert member.approved_minutes == 150 and user_account(member.id).balance == balance
    (event,) = events("organization.member_remove")
    assert event.actor_id == coordinator.id and event.object_id == str(member.id)
    assert event.details == {"organization_id": org.id}
    again = client.delete(url(org, member), headers=token_for(coordinator))
    assert again.status_code == 404 and again.json["error"]["code"] == "not_found"


def test_removal_is_refused_for_a_non_member_for_oneself_and_for_another_organisation(
        client, token_for, make_user, make_org, org, coordinator, served):
    elsewhere = make_org("奉城商会")
    outsider = make_user(name="外人", organization=elsewhere)
    stranger = make_user("coordinator", name="别家协调", organization=elsewhere)

    assert client.delete(url(org, outsider), headers=token_for(coordinator)).status_code == 404
    itself = client.delete(url(org, coordinator), headers=token_for(coordinator))
    assert itself.status_code == 403 and "不能将自己移出" in itself.json["error"]["message"]
    assert client.delete(url(org, served["member"]), headers=token_for(stranger)).status_code == 403
    assert client.delete(url(org, served["member"]), headers=token_for(served["member"])).status_code == 403
    db.session.expire_all()
    assert db.session.get(User, outsider.id).organization_id == elsewhere.id
    assert db.session.get(User, coordinator.id).organization_id == org.id
    assert db.session.get(User, served["member"].id).organization_id == org.id
    assert events("organization.member_remove") == []


def test_the_members_page_lists_members_offers_a_resend_for_the_pending_and_removes_with_a_confirm(
        client, login, org, coordinator, served):
    login(coordinator)
    page = client.get(f"/coordinate/organizations/{org.id}/members").get_data(as_text=True)
    pending = served["pending"]

    assert "李志愿" in page and "王待激活" in page and "待激活" in page and "已激活" in page
    assert f'action="/organizations/{org.id}/members/{pending.id}/invitation"' in page
    assert page.count("重发激活短信") == 1
    assert "data-confirm" in page
    assert client.get(f"/coordinate/organizations/{org.id}/members?per_page=0").status_code == 422
    found = client.get(f"/coordinate/organizations/{org.id}/members?q=待激活").get_data(as_text=True)
    assert "王待激活" in found and "李志愿" not in found

    member = served["member"]
    response = client.post(f"/coordinate/organizations/{org.id}/members/{member.id}/remove",
                           data={"csrf_token": csrf_token(client, f"/coordinate/organizations/{org.id}/members")})
    assert response.status_code == 302
    assert db.session.get(User, member.id).organization_id is None
    assert "已将 李志愿 移出本组织" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert "李志愿" not in client.get(f"/coordinate/organizations/{org.id}/members").get_data(as_text=True)


def test_the_members_page_is_refused_to_volunteers_and_other_organisations(client, login, make_user, make_org, org,
                                                                          served):
    login(served["member"])
    assert client.get(f"/coordinate/organizations/{org.id}/members").status_code == 403
    stranger = make_user("coordinator", name="别家协调", organization=make_org("奉城商会"))
    client.post("/logout", data={"csrf_token": csrf_token(client, "/account")})
    login(stranger)
    assert client.get(f"/coordinate/organizations/{org.id}/members").status_code == 403
    removal = client.post(f"/coordinate/organizations/{org.id}/members/{served['member'].id}/remove",
                          data={"csrf_token": csrf_token(client, "/account")})
    assert removal.status_code == 403
    assert db.session.get(User, served["member"].id).organization_id == org.id


def test_a_member_asks_from_the_account_page_and_moves_when_the_new_coordinator_confirms(
        client, login, token_for, make_user, make_org, org, served):
    party = make_org("奉城镇党委", kind="government")
    party_coordinator = make_user("coordinator", name="党委协调", organization=party)
    member = served["member"]
    login(member)
    assert "申请加入组织" in client.get("/account").get_data(as_text=True)

    response = client.post("/account/organization", data={
        "organization_id": str(party.id), "csrf_token": csrf_token(client, "/account/organization")})

    assert response.status_code == 302
    member = db.session.get(User, member.id)
    assert member.organization_id == org.id and member.requested_organization_id == party.id  # still in org
    headers = token_for(party_coordinator)
    (request,) = client.get(f"/api/v1/organizations/{party.id}/requests", headers=headers).json["items"]
    assert request["organization"] == {"id": org.id, "name": org.name, "kind": org.kind}
    confirmed = client.post(f"/api/v1/organizations/{party.id}/requests/{member.id}/confirm", headers=headers)
    assert confirmed.status_code == 200
    db.session.expire_all()
    member = db.session.get(User, member.id)
    assert member.organization_id == party.id and member.approved_minutes == 150
    (move,) = events("user.organization_move")
    assert move.details == {"from": org.id, "to": party.id} and move.actor_id == party_coordinator.id


def test_the_join_requests_page_shows_the_requesters_current_organisation(client, login, make_user, make_org, org,
                                                                         served):
    party = make_org("奉城镇党委", kind="government")
    services.request_organization(served["member"], party)
    db.session.commit()
    login(make_user("coordinator", name="党委协调", organization=party))
    page = client.get(f"/coordinate/organizations/{party.id}/requests").get_data(as_text=True)
    assert "李志愿" in page and org.name in page


def test_asking_to_join_ones_own_or_no_organisation_is_refused_and_changes_nothing(client, login, org, served):
    login(served["member"])
    token = csrf_token(client, "/account/organization")
    own = client.post("/account/organization", data={"organization_id": str(org.id), "csrf_token": token})
    missing = client.post("/account/organization", data={"organization_id": "999999", "csrf_token": token})
    assert own.status_code == missing.status_code == 422
    assert "您已是该组织成员" in own.get_data(as_text=True)
    assert db.session.get(User, served["member"].id).requested_organization_id is None
    assert events("user.organization_request") == []


def test_a_confirmed_move_racing_the_old_organisations_removal_ends_in_the_new_organisation(
        app, make_user, make_org, org, coordinator, served):
    party = make_org("奉城镇党委", kind="government")
    party_coordinator = make_user("coordinator", name="党委协调", organization=party)
    # Plain ids: touching the test's own objects inside a racer would open a transaction on the test's session.
    mover_id, remover_id = party_coordinator.id, coordinator.id
    for round_ in range(6):
        person = make_user(name=f"转入者{round_}", organization=org)
        services.request_organization(person, party)
        db.session.commit()
        pid, org_id, party_id = person.id, org.id, party.id

        def move(pid=pid, party_id=party_id):
            return services.confirm_request(db.session.get(Organization, party_id), pid,
                                            actor=db.session.get(User, mover_id)).id

        def remove(pid=pid, org_id=org_id):
            return members.remove_member(db.session.get(Organization, org_id), pid,
                                         actor=db.session.get(User, remover_id)).id

        results, _ = race(app, [move, remove])

        assert results[0] == pid, results  # the confirm never fails: the person asked to leave
        assert results[1] in (pid, "not_found"), results
        db.session.expire_all()
        assert db.session.get(User, pid).organization_id == party_id
        moves = [e for e in events("user.organization_move") if e.object_id == str(pid)]
        removals = [e for e in events("organization.member_remove") if e.object_id == str(pid)]
        if results[1] == pid:  # removed first: they joined the town's organisation from none
            assert len(removals) == 1 and moves == []
        else:
            assert removals == [] and [m.details for m in moves] == [{"from": org_id, "to": party_id}]
