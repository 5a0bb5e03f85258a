"""The hours, wallet and certificate API of SPEC 3.2 through HTTP: shapes, status codes and error bodies."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from credits.extensions import db
from credits.hours import services as hours
from credits.hours.models import ServiceRecord
from credits.timeutil import utcnow
from tests.hours.helpers import Clock, at, confirmed_claim, local_day, record_count, slot, started_project

API = "/api/v1"


@pytest.fixture
def project(coordinator):
    return started_project(coordinator, title="健康加油站", block_minutes=60, coins_per_block=1)


@pytest.fixture
def claim(project, volunteer):
    return confirmed_claim(project, volunteer)


@pytest.fixture
def as_coordinator(coordinator, token_for):
    return token_for(coordinator)


@pytest.fixture
def as_volunteer(volunteer, token_for):
    return token_for(volunteer)


@pytest.fixture
def clock(monkeypatch):
    clock = Clock(at(1, 9))
    monkeypatch.setattr(hours, "utcnow", clock)
    return clock


def iso(value) -> str:
    return value.isoformat()


def manual(days_ago: int, minutes: int, hour: int = 9, note: str = "") -> dict:
    data = slot(days_ago, minutes, hour=hour)
    return {"started_at": iso(data["started_at"]), "ended_at": iso(data["ended_at"]), "note": note}


def error_of(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.json
    assert response.json["error"]["code"] == code, response.json
    assert response.json["error"]["message"]
    return response.json["error"]


@pytest.fixture
def filed(client, claim, as_volunteer):
    """File manual records through the API; returns their JSON."""

    def factory(days_ago: int, minutes: int, hour: int = 9) -> dict:
        response = client.post(f"{API}/claims/{claim.id}/hours", json=manual(days_ago, minutes, hour),
                               headers=as_volunteer)
        assert response.status_code == 201, response.json
        return response.json

    return factory


# --- check-in codes, check-in and check-out ---------------------------------------------------------------------


def test_the_coordinator_gets_the_current_check_in_code(client, project, as_coordinator, clock):
    response = client.post(f"{API}/projects/{project.id}/checkin-code", headers=as_coordinator)
    assert response.status_code == 201
    assert response.json["code"] == clock.code(project)
    assert response.json["expires_at"].endswith("+08:00")


def test_only_the_organisers_coordinators_get_the_code(client, project, as_volunteer, make_user, make_org,
                                                       token_for):
    assert client.post(f"{API}/projects/{project.id}/checkin-code").status_code == 401
    error_of(client.post(f"{API}/projects/{project.id}/checkin-code", headers=as_volunteer), 403, "forbidden")
    outsider = token_for(make_user("coordinator", organization=make_org("别的社区")))
    error_of(client.post(f"{API}/projects/{project.id}/checkin-code", headers=outsider), 403, "forbidden")
    error_of(client.post(f"{API}/projects/999999/checkin-code", headers=outsider), 404, "not_found")


def test_no_code_for_a_project_not_under_way(client, coordinator, as_coordinator):
    from credits.projects.services import create_project

    now = utcnow()
    draft = create_project({"title": "下周活动", "category": "健康", "location": "镇卫生院", "capacity": 3,
                            "starts_at": now + timedelta(days=7), "ends_at": now + timedelta(days=7, hours=2)},
                           actor=coordinator)
    db.session.commit()
    error_of(client.post(f"{API}/projects/{draft.id}/checkin-code", headers=as_coordinator), 409, "invalid_state")


def test_check_in_and_check_out(client, claim, project, as_volunteer, clock):
    response = client.post(f"{API}/claims/{claim.id}/checkin", json={"code": clock.code(project)},
                           headers=as_volunteer)
    assert response.status_code == 201, response.json
    record = response.json
    assert (record["status"], record["source"], record["ended_at"], record["minutes"]) == ("open", "checkin",
                                                                                          None, None)
    assert record["claim_id"] == claim.id and record["project"]["title"] == "健康加油站"
    clock.advance(hours=3)
    response = client.post(f"{API}/claims/{claim.id}/checkout", json={"code": clock.code(project)},
                           headers=as_volunteer)
    assert response.status_code == 200, response.json
    assert (response.json["id"], response.json["status"], response.json["minutes"]) == (record["id"], "approved",
                                                                                         180)
    assert client.get(f"{API}/me/wallet", headers=as_volunteer).json["balance"] == 3


def test_a_pasted_or_full_width_code_is_read_as_its_digits(client, claim, project, as_volunteer, clock):
    code = clock.code(project)
    pasted = f" {code[:3]} {code[3:]} "
    response = client.post(f"{API}/claims/{claim.id}/checkin", json={"code": pasted}, headers=as_volunteer)
    assert response.status_code == 201, response.json
    clock.advance(hours=1)
    code = clock.code(project)
    full_width = "\u3000" + code.translate(str.maketrans("0123456789", "０１２３４５６７８９")) + "\t"
    response = client.post(f"{API}/claims/{claim.id}/checkout", json={"code": full_width}, headers=as_volunteer)
    assert response.status_code == 200, response.json


def test_a_check_out_under_a_minute_is_refused_and_the_record_stays_open(client, claim, project, as_volunteer,
                                                                             clock):
    opened = client.post(f"{API}/claims/{claim.id}/checkin", json={"code": clock.code(project)},
                         headers=as_volunteer).json
    clock.advance(seconds=59)
    url = f"{API}/claims/{claim.id}/checkout"
    error_of(client.post(url, json={"code": clock.code(project)}, headers=as_volunteer), 409, "invalid_state")
    assert db.session.get(ServiceRecord, opened["id"]).status == "open"
    clock.advance(seconds=61)
    response = client.post(url, json={"code": clock.code(project)}, headers=as_volunteer)
    assert response.status_code == 200 and response.json["minutes"] == 2, response.json


def test_check_in_errors(client, claim, project, as_volunteer, clock, make_user, token_for):
    url = f"{API}/claims/{claim.id}/checkin"
    body = error_of(client.post(url, json={"code": clock.code(project, windows_back=2)}, headers=as_volunteer),
                    422, "validation_error")
    assert body["fields"] == {"code": [str(hours.WrongCode.message)]}
    body = error_of(client.post(url, json={}, headers=as_volunteer), 422, "validation_error")
    assert "code" in body["fields"]
    error_of(client.post(url, data="{not json", headers={**as_volunteer, "Content-Type": "application/json"}),
             422, "validation_error")
    error_of(client.post(f"{API}/claims/{claim.id}/checkout", json={"code": clock.code(project)},
                         headers=as_volunteer), 409, "invalid_state")
    stranger = token_for(make_user("volunteer", name="赵某"))
    error_of(client.post(url, json={"code": clock.code(project)}, headers=stranger), 404, "not_found")
    error_of(client.post(f"{API}/claims/999999/checkin", json={"code": "123456"}, headers=as_volunteer), 404,
             "not_found")
    assert record_count() == 0


def test_wrong_codes_are_rate_limited(client, claim, project, as_volunteer, clock):
    current, previous = clock.code(project), clock.code(project, windows_back=1)
    wrong = next(c for c in (f"{(int(current) + n) % 1_000_000:06d}" for n in range(1, 5)) if c != previous)
    url = f"{API}/claims/{claim.id}/checkin"
    for _ in range(10):
        error_of(client.post(url, json={"code": wrong}, headers=as_volunteer), 422, "validation_error")
    error_of(client.post(url, json={"code": current}, headers=as_volunteer), 429, "rate_limited")
    error_of(client.post(f"{API}/claims/{claim.id}/checkout", json={"code": current}, headers=as_volunteer), 429,
             "rate_limited")
    assert record_count() == 0


# --- manual records -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["checkin", "checkout", "hours"])
def test_a_claim_id_past_the_id_column_is_404_not_an_overflow(client, as_volunteer, action):
    """Found by tests/test_fuzz.py: /claims/193298374542681234199828668350464/checkin overflowed the query."""
    error_of(client.post(f"{API}/claims/{10**32}/{action}", json={"code": "123456"}, headers=as_volunteer),
             404, "not_found")


def test_filing_a_manual_record(client, claim, as_volunteer):
    response = client.post(f"{API}/claims/{claim.id}/hours", json=manual(3, 90, note="量血压"), headers=as_volunteer)
    assert response.status_code == 201, response.json
    record = response.json
    assert (record["status"], record["source"], record["minutes"], record["note"]) == ("pending", "manual", 90,
                                                                                      "量血压")
    assert record["started_at"].endswith("+08:00") and record["started_at"].startswith(str(local_day(3)))


def test_naive_times_are_local(client, claim, as_volunteer):
    day = local_day(3)
    response = client.post(f"{API}/claims/{claim.id}/hours", headers=as_volunteer,
                           json={"started_at": f"{day}T09:00:00", "ended_at": f"{day}T10:30:00"})
    assert response.status_code == 201, response.json
    assert response.json["started_at"] == f"{day}T09:00:00+08:00" and response.json["minutes"] == 90


def test_manual_record_errors(client, claim, as_volunteer, filed, make_user, token_for, coordinator):
    url = f"{API}/claims/{claim.id}/hours"
    filed(3, 8 * 60, hour=8)
    error_of(client.post(url, json=manual(3, 60, hour=10), headers=as_volunteer), 409, "overlap")
    error_of(client.post(url, json=manual(3, 5 * 60, hour=17), headers=as_volunteer), 409, "daily_limit")
    body = error_of(client.post(url, json={**manual(4, 60), "ended_at": iso(at(4, 8))}, headers=as_volunteer),
                    422, "validation_error")
    assert "ended_at" in body["fields"]
    body = error_of(client.post(url, json={"ended_at": iso(at(4, 8))}, headers=as_volunteer), 422,
                    "validation_error")
    assert "started_at" in body["fields"]
    body = error_of(client.post(url, json={"started_at": "yesterday", "ended_at": iso(at(4, 8))},
                                headers=as_volunteer), 422, "validation_error")
    assert "started_at" in body["fields"]
    error_of(client.post(url, json=manual(4, 13 * 60, hour=6), headers=as_volunteer), 422, "validation_error")
    stranger = token_for(make_user("volunteer"))
    error_of(client.post(url, json=manual(5, 60), headers=stranger), 404, "not_found")
    error_of(client.post(url, json=manual(5, 60), headers=token_for(coordinator)), 403, "forbidden")
    assert record_count() == 1


def test_a_manual_record_under_a_minute_is_refused(client, claim, as_volunteer):
    start = at(3, 9)
    body = error_of(client.post(f"{API}/claims/{claim.id}/hours", headers=as_volunteer,
                                json={"started_at": iso(start), "ended_at": iso(start + timedelta(seconds=59))}),
                    422, "validation_error")
    assert body["fields"] == {"ended_at": ["时长不足 1 分钟。"]}
    assert record_count() == 0


def test_a_waitlisted_claim_cannot_file(client, coordinator, volunteer, make_user, as_volunteer):
    from credits.projects.services import claim as take

    project = started_project(coordinator, capacity=1, title="小场地")
    confirmed_claim(project, make_user("volunteer"))
    waiting = take(project, volunteer=volunteer)
    db.session.commit()
    error_of(client.post(f"{API}/claims/{waiting.id}/hours", json=manual(3, 60), headers=as_volunteer), 409,
             "invalid_state")


# --- lists -----------------------------------------------------------------------------------------------------


def test_the_review_queue_filters_by_status_and_project(client, coordinator, as_coordinator, volunteer, claim,
                                                         filed, make_user, make_org, token_for):
    other_project = started_project(coordinator, title="敬老院陪伴")
    other_claim = confirmed_claim(other_project, volunteer)
    first, second = filed(5, 60), filed(4, 60)
    client.post(f"{API}/claims/{other_claim.id}/hours", json=manual(3, 60), headers=token_for(volunteer))
    client.post(f"{API}/hours/{first['id']}/approve", headers=as_coordinator)

    page = client.get(f"{API}/hours", headers=as_coordinator).json
    assert (page["total"], page["page"], page["per_page"]) == (3, 1, 20)
    assert [r["id"] for r in page["items"]][:2] == [first["id"], second["id"]]  # oldest first
    pending = client.get(f"{API}/hours?status=pending&project_id={claim.project_id}", headers=as_coordinator).json
    assert [r["id"] for r in pending["items"]] == [second["id"]]
    assert pending["items"][0]["volunteer"]["name"] == "张小明"
    assert client.get(f"{API}/hours?project_id={other_project.id}", headers=as_coordinator).json["total"] == 1
    assert client.get(f"{API}/hours?per_page=1&page=2", headers=as_coordinator).json["items"][0]["id"] == (
        second["id"])
    error_of(client.get(f"{API}/hours?status=bogus", headers=as_coordinator), 422, "validation_error")
    error_of(client.get(f"{API}/hours?project_id={2**31}", headers=as_coordinator), 422, "validation_error")
    error_of(client.get(f"{API}/hours", headers=token_for(volunteer)), 403, "forbidden")
    outsider = token_for(make_user("coordinator", organization=make_org("别的社区")))
    assert client.get(f"{API}/hours", headers=outsider).json["total"] == 0


def test_my_hours_show_status_and_reason(client, filed, as_volunteer, as_coordinator, make_user, token_for):
    rejected, kept = filed(5, 60), filed(4, 60)
    client.post(f"{API}/hours/{rejected['id']}/reject", json={"reason": "当天未到场"}, headers=as_coordinator)
    page = client.get(f"{API}/me/hours", headers=as_volunteer).json
    assert page["total"] == 2
    assert {r["id"]: (r["status"], r["reason"]) for r in page["items"]} == {
        rejected["id"]: ("rejected", "当天未到场"), kept["id"]: ("pending", None)}
    assert [r["id"] for r in page["items"]] == [kept["id"], rejected["id"]]  # newest first
    assert client.get(f"{API}/me/hours?status=pending", headers=as_volunteer).json["total"] == 1
    assert client.get(f"{API}/me/hours", headers=token_for(make_user("volunteer"))).json["total"] == 0


# --- review ----------------------------------------------------------------------------------------------------


def test_approve_answers_the_record_and_the_coins(client, filed, as_coordinator, coordinator):
    record = filed(3, 150)
    response = client.post(f"{API}/hours/{record['id']}/approve", headers=as_coordinator)
    assert response.status_code == 200, response.json
    assert response.json["coins_issued"] == 2
    assert response.json["record"]["status"] == "approved" and response.json["record"]["id"] == record["id"]
    assert response.json["record"]["reviewed_at"].endswith("+08:00")
    error_of(client.post(f"{API}/hours/{record['id']}/approve", headers=as_coordinator), 409, "invalid_state")


def test_reject_and_revoke(client, filed, as_coordinator, as_volunteer):
    pending, approved = filed(4, 60), filed(3, 120)
    body = error_of(client.post(f"{API}/hours/{pending['id']}/reject", json={}, headers=as_coordinator), 422,
                    "validation_error")
    assert "reason" in body["fields"]
    response = client.post(f"{API}/hours/{pending['id']}/reject", json={"reason": "重复提交"}, headers=as_coordinator)
    assert response.status_code == 200 and (response.json["status"], response.json["reason"]) == ("rejected",
                                                                                                 "重复提交")
    error_of(client.post(f"{API}/hours/{approved['id']}/revoke", json={"reason": "还没通过"},
                         headers=as_coordinator), 409, "invalid_state")
    client.post(f"{API}/hours/{approved['id']}/approve", headers=as_coordinator)
    response = client.post(f"{API}/hours/{approved['id']}/revoke", json={"reason": "核实有误"},
                           headers=as_coordinator)
    assert response.status_code == 200, response.json
    assert (response.json["status"], response.json["reason"], response.json["coins_clawed_back"]) == (
        "revoked", "核实有误", 2)
    assert client.get(f"{API}/me/wallet", headers=as_volunteer).json["balance"] == 0


def test_who_may_review(client, filed, as_volunteer, make_user, make_org, org, token_for, coordinator, project):
    record = filed(3, 60)
    url = f"{API}/hours/{record['id']}/approve"
    assert client.post(url).status_code == 401
    error_of(client.post(url, headers=as_volunteer), 403, "forbidden")
    outsider = token_for(make_user("coordinator", organization=make_org("别的社区")))
    error_of(client.post(url, headers=outsider), 404, "not_found")
    error_of(client.post(f"{API}/hours/999999/approve", headers=token_for(coordinator)), 404, "not_found")
    # A coordinator who also volunteers does not review their own record.
    both = make_user("coordinator", "volunteer", organization=org)
    own_claim = confirmed_claim(project, both)
    as_both = token_for(both)
    own = client.post(f"{API}/claims/{own_claim.id}/hours", json=manual(3, 60), headers=as_both).json
    error_of(client.post(f"{API}/hours/{own['id']}/approve", headers=as_both), 403, "forbidden")
    assert client.post(url, headers=as_both).status_code == 200  # a colleague's record is fine
    statuses = dict(db.session.execute(select(ServiceRecord.id, ServiceRecord.status)).all())
    assert statuses == {record["id"]: "approved", own["id"]: "pending"}


def test_bulk_review(client, filed, as_coordinator, make_user, org, project, token_for):
    a, b, c = filed(5, 60), filed(4, 60), filed(3, 60)
    both = make_user("coordinator", "volunteer", organization=org)
    own = client.post(f"{API}/claims/{confirmed_claim(project, both).id}/hours", json=manual(3, 60),
                      headers=token_for(both)).json
    client.post(f"{API}/hours/{c['id']}/approve", headers=as_coordinator)
    response = client.post(f"{API}/hours/review", json={"ids": [a["id"], b["id"], c["id"], 999999, own["id"]],
                                                         "action": "approve"}, headers=token_for(both))
    assert response.status_code == 200, response.json
    # Results come in id order: records are locked in that order so overlapping sweeps cannot deadlock.
    assert [(r["id"], r["ok"], r["code"], r["coins_issued"]) for r in response.json["results"]] == sorted([
        (a["id"], True, None, 1), (b["id"], True, None, 1), (c["id"], False, "invalid_state", 0),
        (999999, False, "not_found", 0), (own["id"], False, "forbidden", 0)])
    body = error_of(client.post(f"{API}/hours/review", json={"ids": [own["id"]], "action": "reject"},
                                headers=as_coordinator), 422, "validation_error")
    assert "reason" in body["fields"]
    error_of(client.post(f"{API}/hours/review", json={"ids": [], "action": "approve"}, headers=as_coordinator),
             422, "validation_error")
    error_of(client.post(f"{API}/hours/review", json={"ids": [own["id"]], "action": "delete"},
                         headers=as_coordinator), 422, "validation_error")
    response = client.post(f"{API}/hours/review", json={"ids": [own["id"]], "action": "reject", "reason": "不实"},
                           headers=as_coordinator)
    assert response.json["results"] == [{"id": own["id"], "ok": True, "code": None, "coins_issued": 0,
                                         "status": "rejected"}]
    assert db.session.get(ServiceRecord, own["id"]).reason == "不实"


# --- wallet, transactions, certificates ----------------------------------------------------------------------------


def test_wallet_and_transactions(client, filed, as_coordinator, as_volunteer, make_user, token_for):
    assert client.get(f"{API}/me/wallet", headers=as_volunteer).json == {
        "balance": 0, "held": 0, "earned": 0, "spent": 0, "expired": 0, "debt": 0}
    empty = client.get(f"{API}/me/transactions", headers=as_volunteer).json
    assert empty == {"items": [], "page": 1, "per_page": 20, "total": 0}
    for days in (5, 4, 3):
        client.post(f"{API}/hours/{filed(days, 60)['id']}/approve", headers=as_coordinator)
    assert client.get(f"{API}/me/wallet", headers=as_volunteer).json == {
        "balance": 3, "held": 0, "earned": 3, "spent": 0, "expired": 0, "debt": 0}
    page = client.get(f"{API}/me/transactions?per_page=2", headers=as_volunteer).json
    assert (page["total"], page["per_page"], len(page["items"])) == (3, 2, 2)
    item = page["items"][0]
    assert set(item) == {"id", "kind", "amount", "balance_after", "created_at", "memo"}
    assert (item["kind"], item["amount"], item["balance_after"], item["memo"]) == ("issue", 1, 3,
                                                                                  "健康加油站 满 3 小时")
    error_of(client.get(f"{API}/me/transactions?per_page=1000", headers=as_volunteer), 422, "validation_error")
    error_of(client.get(f"{API}/me/wallet", headers=as_coordinator), 403, "forbidden")
    assert client.get(f"{API}/me/wallet").status_code == 401


def test_requesting_a_certificate(client, filed, as_coordinator, as_volunteer, org):
    for days in (5, 4):
        client.post(f"{API}/hours/{filed(days, 90)['id']}/approve", headers=as_coordinator)
    filed(3, 60)  # pending: not certified
    response = client.post(f"{API}/me/certificates", json={"from": str(local_day(10)), "to": str(local_day(0))},
                           headers=as_volunteer)
    assert response.status_code == 201, response.json
    certificate = response.json
    assert certificate["number"].startswith("FC") and certificate["total_minutes"] == 180
    assert certificate["verify_url"].endswith(f"/certificates/{certificate['number']}")
    assert certificate["lines"] == [{"project_id": certificate["lines"][0]["project_id"], "title": "健康加油站",
                                     "organization": org.name, "minutes": 180}]
    assert certificate["volunteer_name"] == "张小明" and certificate["volunteer_no"]
    again = client.post(f"{API}/me/certificates", json={"from": str(local_day(10)), "to": str(local_day(0))},
                        headers=as_volunteer).json
    assert again["number"] != certificate["number"]
    # Only the days asked for count.
    narrow = client.post(f"{API}/me/certificates", json={"from": str(local_day(4)), "to": str(local_day(4))},
                         headers=as_volunteer).json
    assert narrow["total_minutes"] == 90


def test_certificate_errors(client, as_volunteer, as_coordinator):
    url = f"{API}/me/certificates"
    body = error_of(client.post(url, json={"from": str(local_day(1)), "to": str(local_day(5))},
                                headers=as_volunteer), 422, "validation_error")
    assert "to" in body["fields"]
    body = error_of(client.post(url, json={"to": "2024-13-01"}, headers=as_volunteer), 422, "validation_error")
    assert {"from", "to"} <= set(body["fields"])
    body = error_of(client.post(url, json={"from": "0001-01-01", "to": "9999-12-31"}, headers=as_volunteer),
                    422, "validation_error")  # the day after 9999-12-31 would overflow
    assert {"from", "to"} <= set(body["fields"])
    error_of(client.post(url, json={"from": str(local_day(10)), "to": str(local_day(0))}, headers=as_volunteer),
             409, "invalid_state")  # no approved hours
    error_of(client.post(url, json={"from": str(local_day(10)), "to": str(local_day(0))},
                         headers=as_coordinator), 403, "forbidden")
