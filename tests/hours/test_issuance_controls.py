"""No one person can mint (SPEC 2.3): each hole an adversarial review found, reproduced as it was tried, and refused
or caught — bounded credit rules, no back-dating, four eyes on big issuance, no self-issuance by check-in, the
clawback escape closed by the volunteer's debt, midnight check-ins, 64-bit amounts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from credits.auth.models import AuditEvent
from credits.errors import DomainError, Forbidden
from credits.extensions import db
from credits.hours import services as hours
from credits.hours.models import RecordStatus, ServiceRecord
from credits.ledger.models import Account, SystemAccount, Transaction, TxKind
from credits.ledger.services import MAX_COINS, AmountOutOfRange, system_account, transfer, user_account
from credits.ledger.verify import verify_ledger
from credits.merchants import services as merchants
from credits.projects import services as projects
from credits.settings.services import update_policy
from credits.timeutil import utcnow
from tests.hours.helpers import (
    Clock,
    approve,
    at,
    confirmed_claim,
    file,
    revoke,
    slot,
    started_project,
)
from tests.merchants.helpers import make_service, make_shop
from tests.races import race

API = "/api/v1"


def balance_of(user) -> int:
    return db.session.scalar(select(Account.balance).where(Account.user_id == user.id)) or 0


def debt_of(user) -> int:
    return db.session.scalar(select(Account.debt).where(Account.user_id == user.id)) or 0


def issued_in_all() -> int:
    return db.session.scalar(select(func.coalesce(func.sum(Transaction.amount), 0))
                             .where(Transaction.kind == TxKind.ISSUE))


def refused(fn, *args, **kwargs) -> DomainError:
    with pytest.raises(DomainError) as info:
        fn(*args, **kwargs)
    db.session.rollback()
    return info.value


def fields_of(response, status: int = 422) -> dict:
    assert response.status_code == status, response.json
    return response.json["error"].get("fields", {})


@pytest.fixture
def second(make_user, org):
    """Another coordinator of the organiser: the second pair of eyes."""
    return make_user("coordinator", name="王复核", organization=org)


@pytest.fixture
def as_coordinator(coordinator, token_for):
    return token_for(coordinator)


def project_body(*, days_ago: float, block_minutes: int = 60, coins_per_block: int = 1) -> dict:
    start = utcnow() - timedelta(days=days_ago)
    return {"title": "健康加油站", "category": "健康", "location": "镇卫生院", "capacity": 5,
            "starts_at": start.isoformat(), "ends_at": (utcnow() + timedelta(days=1)).isoformat(),
            "block_minutes": block_minutes, "coins_per_block": coins_per_block}


# --- the five-step mint, as it was tried ---------------------------------------------------------------------


def test_the_one_coordinator_mint_is_refused_at_every_step(client, coordinator, second, as_coordinator, token_for):
    # 1. A throwaway volunteer (registration itself is open; verified phones are SPEC 2.7's business).
    registered = client.post(f"{API}/auth/register", json={"phone": "13700000001", "password": "throwaway-pass-1",
                                                           "name": "小号"})
    assert registered.status_code == 201
    throwaway = {"Authorization": f"Bearer {client.post(f'{API}/auth/token', json={'phone': '13700000001', 'password': 'throwaway-pass-1'}).json['token']}"}  # noqa: E501

    # 2. A project 11 months in the past paying 60,000 × the default rate: both refused, on their fields.
    assert "block_minutes" in fields_of(client.post(f"{API}/projects", headers=as_coordinator, json=project_body(
        days_ago=330, block_minutes=1, coins_per_block=1000)))
    assert "starts_at" in fields_of(client.post(f"{API}/projects", headers=as_coordinator,
                                                json=project_body(days_ago=330, coins_per_block=10)))
    # The most the bounds allow: 10 coins an hour, started 6 days ago.
    created = client.post(f"{API}/projects", headers=as_coordinator, json=project_body(days_ago=6, coins_per_block=10))
    assert created.status_code == 201, created.json
    project_id = created.json["id"]
    assert client.post(f"{API}/projects/{project_id}/publish", headers=as_coordinator, json={}).status_code == 200

    # 3. The throwaway claims it today and files 12-hour records on days before the project (refused) and in it.
    claim_id = client.post(f"{API}/projects/{project_id}/claims", headers=throwaway).json["id"]
    before = slot(20, 720, hour=8)
    assert "started_at" in fields_of(client.post(f"{API}/claims/{claim_id}/hours", headers=throwaway, json={
        "started_at": before["started_at"].isoformat(), "ended_at": before["ended_at"].isoformat()}))
    inside = slot(3, 720, hour=8)
    filed = client.post(f"{API}/claims/{claim_id}/hours", headers=throwaway, json={
        "started_at": inside["started_at"].isoformat(), "ended_at": inside["ended_at"].isoformat()})
    assert filed.status_code == 201

    # 4. Approved by the same coordinator: 120 coins is more than one person may issue — it waits, with no coins.
    first = client.post(f"{API}/hours/{filed.json['id']}/approve", headers=as_coordinator)
    assert first.status_code == 202
    assert (first.json["record"]["status"], first.json["coins_issued"]) == ("awaiting_second_approval", 0)
    again = client.post(f"{API}/hours/{filed.json['id']}/approve", headers=as_coordinator)
    assert (again.status_code, again.json["error"]["code"]) == (403, "forbidden")
    assert issued_in_all() == 0
    assert client.get(f"{API}/me/wallet", headers=throwaway).json["balance"] == 0

    # A second person completes it: the coins the rule owes, and no more.
    done = client.post(f"{API}/hours/{filed.json['id']}/approve", headers=token_for(second))
    assert (done.status_code, done.json["coins_issued"], done.json["record"]["status"]) == (200, 120, "approved")
    assert verify_ledger() == []


# --- bounded credit rules --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("block_minutes", "coins_per_block", "field"), [
    (1, 1000, "block_minutes"), (14, 1, "block_minutes"), (60, 11, "coins_per_block"), (15, 3, "coins_per_block")])
def test_a_rule_past_the_policys_bounds_is_refused_on_its_field(coordinator, block_minutes, coins_per_block, field):
    data = {"title": "义诊", "category": "健康", "location": "镇卫生院", "capacity": 3,
            "starts_at": utcnow() + timedelta(days=1), "ends_at": utcnow() + timedelta(days=1, hours=2),
            "block_minutes": block_minutes, "coins_per_block": coins_per_block}
    error = refused(projects.create_project, data, actor=coordinator)
    assert (error.code, list(error.fields)) == ("validation_error", [field])


@pytest.mark.parametrize(("block_minutes", "coins_per_block"), [(60, 10), (15, 2), (30, 5)])
def test_rules_within_the_bounds_are_accepted(coordinator, block_minutes, coins_per_block):
    project = started_project(coordinator, days_ago=1, block_minutes=block_minutes, coins_per_block=coins_per_block)
    assert (project.block_minutes, project.coins_per_block) == (block_minutes, coins_per_block)


def test_only_an_admin_raises_the_bounds(client, coordinator, set_policy, login):
    with pytest.raises(Forbidden):
        update_policy({"max_coins_per_hour": 100}, actor=coordinator)
    db.session.rollback()
    login(coordinator)
    assert client.get("/admin/policy").status_code == 403
    set_policy(max_coins_per_hour=20)
    project = started_project(coordinator, days_ago=1, block_minutes=60, coins_per_block=20)
    assert project.coins_per_block == 20


def test_the_policy_page_shows_the_new_limits(client, make_user, login):
    login(make_user("admin", name="管理员"))
    page = client.get("/admin/policy").get_data(as_text=True)
    for name in ("max_coins_per_hour", "min_block_minutes", "backdate_days", "manual_record_days",
                 "second_approval_coins", "daily_issue_limit"):
        assert f'name="{name}"' in page


def test_the_default_rule_cannot_exceed_the_maximum(set_policy):
    from marshmallow import ValidationError

    with pytest.raises(ValidationError) as info:
        set_policy(coins_per_block=11)
    assert "coins_per_block" in info.value.messages
    db.session.rollback()
    with pytest.raises(ValidationError) as info:
        set_policy(max_coins_per_hour=0)
    db.session.rollback()


def test_a_draft_cannot_be_published_once_the_policy_no_longer_allows_its_rule(coordinator, set_policy):
    draft = projects.create_project({"title": "义诊", "category": "健康", "location": "镇卫生院", "capacity": 3,
                                     "starts_at": utcnow() + timedelta(days=1),
                                     "ends_at": utcnow() + timedelta(days=1, hours=2), "block_minutes": 60,
                                     "coins_per_block": 10}, actor=coordinator)
    db.session.commit()
    set_policy(max_coins_per_hour=5)
    error = refused(projects.publish, draft, actor=coordinator)
    assert list(error.fields) == ["coins_per_block"]
    assert draft.status == "draft"


def test_a_drafts_rule_cannot_be_raised_past_the_bounds(client, coordinator, as_coordinator):
    body = project_body(days_ago=-1)
    project_id = client.post(f"{API}/projects", headers=as_coordinator, json=body).json["id"]
    response = client.patch(f"{API}/projects/{project_id}", headers=as_coordinator, json={"coins_per_block": 50})
    assert "coins_per_block" in fields_of(response)


# --- time bounds ------------------------------------------------------------------------------------------------


def test_a_project_cannot_start_more_than_backdate_days_ago(client, as_coordinator):
    assert "starts_at" in fields_of(client.post(f"{API}/projects", headers=as_coordinator,
                                                json=project_body(days_ago=7.1)))
    ok = client.post(f"{API}/projects", headers=as_coordinator, json=project_body(days_ago=6.9))
    assert ok.status_code == 201
    moved = client.patch(f"{API}/projects/{ok.json['id']}", headers=as_coordinator,
                         json={"starts_at": (utcnow() - timedelta(days=30)).isoformat()})
    assert "starts_at" in fields_of(moved)


def test_a_manual_record_must_be_filed_within_manual_record_days(coordinator, volunteer, set_policy):
    claim = confirmed_claim(started_project(coordinator, days_ago=40), volunteer)
    set_policy(manual_record_days=30)  # back to the default, for a project that began before it
    error = refused(hours.file_manual, claim, slot(32, 60), volunteer=volunteer)
    assert (error.code, list(error.fields)) == ("validation_error", ["started_at"])
    assert file(claim, volunteer, slot(29, 60)).status == RecordStatus.PENDING


# --- check-ins: midnight, and no self-issuance --------------------------------------------------------------------


@pytest.fixture
def clock(monkeypatch):
    clock = Clock(at(2, 16, 30))
    monkeypatch.setattr(hours, "utcnow", clock)
    return clock


def test_a_check_in_past_midnight_is_compared_whole_with_the_8_hour_cap(coordinator, volunteer, clock):
    claim = confirmed_claim(started_project(coordinator, days_ago=5), volunteer)
    hours.check_in(claim, clock.code(claim.project), volunteer=volunteer)
    db.session.commit()
    clock.advance(minutes=588)  # 16:30 to 02:18 the next day
    record, coins = hours.check_out(claim, clock.code(claim.project), volunteer=volunteer)
    db.session.commit()
    assert (record.minutes, record.status, coins) == (588, RecordStatus.PENDING, 0)


def test_a_shorter_check_in_past_midnight_is_still_approved_at_once(coordinator, volunteer, clock):
    claim = confirmed_claim(started_project(coordinator, days_ago=5), volunteer)
    clock.advance(hours=4)  # 20:30
    hours.check_in(claim, clock.code(claim.project), volunteer=volunteer)
    db.session.commit()
    clock.advance(hours=6)  # 02:30
    record, coins = hours.check_out(claim, clock.code(claim.project), volunteer=volunteer)
    db.session.commit()
    assert (record.minutes, record.status, coins) == (360, RecordStatus.APPROVED, 6)


def test_a_coordinator_checking_in_on_their_own_project_waits_for_another(make_user, org, second, clock):
    """The self check-in of the second review: claim, show the code, check in and out — no coins without a
    second coordinator."""
    both = make_user("coordinator", "volunteer", name="赵协调", organization=org)
    claim = confirmed_claim(started_project(both, days_ago=5, coins_per_block=1), both)
    code = hours.checkin_code(claim.project, actor=both)[0]
    hours.check_in(claim, code, volunteer=both)
    db.session.commit()
    clock.advance(hours=3)
    record, coins = hours.check_out(claim, hours.checkin_code(claim.project, actor=both)[0], volunteer=both)
    db.session.commit()
    assert (record.status, coins, balance_of(both)) == (RecordStatus.PENDING, 0, 0)
    assert record.checkin_code_by_id == record.checkout_code_by_id == both.id
    assert refused(hours.approve, record, reviewer=both).code == "forbidden"
    assert approve(record, second) == 3


def test_a_check_in_records_whose_code_it_used(coordinator, second, volunteer, clock):
    claim = confirmed_claim(started_project(coordinator, days_ago=5), volunteer)
    hours.check_in(claim, clock.code(claim.project, shown_by=second), volunteer=volunteer)
    db.session.commit()
    clock.advance(hours=2)
    record, coins = hours.check_out(claim, clock.code(claim.project), volunteer=volunteer)
    db.session.commit()
    assert (record.checkin_code_by_id, record.checkout_code_by_id, coins) == (second.id, coordinator.id, 2)


def test_a_code_of_another_organisations_coordinator_is_wrong(coordinator, volunteer, make_user, make_org, clock):
    stranger = make_user("coordinator", name="外单位", organization=make_org("别的组织"))
    claim = confirmed_claim(started_project(coordinator, days_ago=5), volunteer)
    assert refused(hours.check_in, claim, clock.code(claim.project, shown_by=stranger),
                   volunteer=volunteer).code == "validation_error"


def test_automatic_approval_counts_against_the_code_showers_limits(coordinator, volunteer, set_policy, clock):
    claim = confirmed_claim(started_project(coordinator, days_ago=5), volunteer)
    set_policy(second_approval_coins=2)
    hours.check_in(claim, clock.code(claim.project), volunteer=volunteer)
    db.session.commit()
    clock.advance(hours=3)  # 3 coins: more than one approval may issue alone
    record, coins = hours.check_out(claim, clock.code(claim.project), volunteer=volunteer)
    db.session.commit()
    assert (record.status, coins) == (RecordStatus.PENDING, 0)


def test_a_coordinators_daily_limit_holds_back_automatic_approvals_of_their_code(coordinator, volunteer, set_policy,
                                                                                  clock):
    claim = confirmed_claim(started_project(coordinator, days_ago=5), volunteer)
    set_policy(daily_issue_limit=2)
    hours.check_in(claim, clock.code(claim.project), volunteer=volunteer)
    db.session.commit()
    clock.advance(hours=3)
    record, coins = hours.check_out(claim, clock.code(claim.project), volunteer=volunteer)
    db.session.commit()
    assert (record.status, coins) == (RecordStatus.PENDING, 0)


# --- four eyes --------------------------------------------------------------------------------------------------


@pytest.fixture
def generous(coordinator):
    """A project paying the most the policy allows: 10 coins an hour."""
    return started_project(coordinator, days_ago=5, block_minutes=60, coins_per_block=10)


def test_an_approval_above_second_approval_coins_waits_for_a_second_person(generous, coordinator, second, volunteer):
    record = file(confirmed_claim(generous, volunteer), volunteer, slot(2, 360))  # 60 coins
    assert approve(record, coordinator) == 0
    assert (record.status, record.first_approved_by_id, balance_of(volunteer)) == (
        RecordStatus.AWAITING_SECOND_APPROVAL, coordinator.id, 0)
    assert refused(hours.approve, record, reviewer=coordinator).code == "forbidden"
    assert refused(hours.revoke, record, "x", reviewer=second).code == "invalid_state"
    assert approve(record, second) == 60
    assert (record.status, record.reviewed_by_id, balance_of(volunteer)) == (RecordStatus.APPROVED, second.id, 60)
    actions = db.session.scalars(select(AuditEvent.action).where(AuditEvent.object_type == "service_records",
                                                                 AuditEvent.object_id == str(record.id))
                                 .order_by(AuditEvent.id)).all()
    assert actions == ["hours.file", "hours.first_approve", "hours.approve"]
    assert verify_ledger() == []


def test_an_approval_at_second_approval_coins_needs_nobody_else(generous, coordinator, volunteer):
    record = file(confirmed_claim(generous, volunteer), volunteer, slot(2, 300))  # 50 coins: at the limit
    assert approve(record, coordinator) == 50


def test_an_admin_can_be_the_second_person_from_the_issuance_report(generous, coordinator, volunteer, make_user,
                                                                     browser):
    record = file(confirmed_claim(generous, volunteer), volunteer, slot(2, 360))
    approve(record, coordinator)
    admin = browser(make_user("admin", name="管理员"))
    page = admin.get("/admin/issuance").get_data(as_text=True)
    assert "等待第二人复核" in page and f"/admin/issuance/records/{record.id}/approve" in page
    from tests.conftest import csrf_token

    response = admin.post(f"/admin/issuance/records/{record.id}/approve",
                          data={"csrf_token": csrf_token(admin, "/admin/issuance")})
    assert response.status_code == 302
    db.session.refresh(record)
    assert (record.status, balance_of(volunteer)) == (RecordStatus.APPROVED, 60)


def test_the_second_person_may_reject_instead(generous, coordinator, second, volunteer):
    record = file(confirmed_claim(generous, volunteer), volunteer, slot(2, 360))
    approve(record, coordinator)
    hours.reject(record, "时间与签到表不符", reviewer=second)
    db.session.commit()
    assert (record.status, balance_of(volunteer)) == (RecordStatus.REJECTED, 0)


def test_an_approval_past_the_daily_limit_waits(generous, coordinator, second, make_user, set_policy):
    set_policy(daily_issue_limit=100)
    volunteers = [make_user("volunteer", name=f"志愿者{i}") for i in range(3)]
    records = [file(confirmed_claim(generous, v), v, slot(2, 240)) for v in volunteers]  # 40 coins each
    assert [approve(r, coordinator) for r in records] == [40, 40, 0]  # the third would make 120 > 100 today
    assert records[2].status == RecordStatus.AWAITING_SECOND_APPROVAL
    assert hours.issued_today(coordinator.id) == 80
    assert approve(records[2], second) == 40  # the second person's own count starts at 40


@pytest.mark.slow
def test_two_approvals_at_once_cannot_both_fit_under_the_daily_limit(app, generous, coordinator, make_user,
                                                                       set_policy, retries):
    set_policy(daily_issue_limit=70)
    volunteers = [make_user("volunteer", name=f"志愿者{i}") for i in range(2)]
    ids = [file(confirmed_claim(generous, v), v, slot(2, 240)).id for v in volunteers]  # 40 coins each
    reviewer_id = coordinator.id

    def approve_one(record_id):
        def job():
            from credits.auth.models import User

            record = db.session.get(ServiceRecord, record_id)
            coins = hours.approve(record, reviewer=db.session.get(User, reviewer_id))
            return coins, record.status

        return job

    results, _seconds = race(app, [approve_one(i) for i in ids])
    assert sorted(results) == [(0, "awaiting_second_approval"), (40, "approved")], results
    assert hours.issued_today(coordinator.id) == 40
    assert verify_ledger() == []


# --- the clawback escape -----------------------------------------------------------------------------------------


@pytest.fixture
def spent_on_a_voucher(coordinator, volunteer):
    """The escape as tried: 12 coins earned, all of them held for a 12-coin voucher, then the hours revoked."""
    project = started_project(coordinator, days_ago=5)
    record = file(confirmed_claim(project, volunteer), volunteer, slot(2, 720))
    assert approve(record, coordinator) == 12
    service = make_service(make_shop(coordinator), coordinator, price=12)
    voucher = merchants.take_voucher(service, volunteer=volunteer)
    db.session.commit()
    assert revoke(record, coordinator) == 0  # nothing to take: it is all in escrow
    assert (balance_of(volunteer), debt_of(volunteer)) == (0, 12)
    return voucher


def test_cancelling_the_voucher_pays_the_debt_instead_of_returning_the_coins(spent_on_a_voucher, volunteer):
    merchants.cancel_voucher(spent_on_a_voucher, volunteer=volunteer)
    db.session.commit()
    assert (balance_of(volunteer), debt_of(volunteer)) == (0, 0)
    assert verify_ledger() == []


def test_an_expired_voucher_pays_the_debt_too(spent_on_a_voucher, volunteer):
    merchants.expire_if_due(spent_on_a_voucher, now=spent_on_a_voucher.expires_at + timedelta(seconds=1))
    db.session.commit()
    assert (balance_of(volunteer), debt_of(volunteer)) == (0, 0)
    assert verify_ledger() == []


def test_the_wallet_shows_the_debt(spent_on_a_voucher, volunteer, client, token_for, login):
    assert client.get(f"{API}/me/wallet", headers=token_for(volunteer)).json["debt"] == 12
    login(volunteer)
    assert 'data-debt>12<' in client.get("/me/wallet").get_data(as_text=True)


def test_an_adjustment_to_a_volunteer_in_debt_pays_the_debt_first(spent_on_a_voucher, volunteer):
    transfer(TxKind.ADJUST, system_account(SystemAccount.ISSUANCE), user_account(volunteer.id), 20, actor=None,
             memo="表彰奖励")
    db.session.commit()
    assert (balance_of(volunteer), debt_of(volunteer)) == (8, 0)
    assert verify_ledger() == []


# --- 64-bit amounts ----------------------------------------------------------------------------------------------


def test_a_balance_past_two_to_the_31_still_takes_an_approval(coordinator, volunteer):
    """After the mint one balance reached 2,145,600,000 and the next approval was a 500 (integer out of range)."""
    transfer(TxKind.ADJUST, system_account(SystemAccount.ISSUANCE), user_account(volunteer.id), 2_147_483_600,
             actor=None, memo="测试")
    db.session.commit()
    record = file(confirmed_claim(started_project(coordinator, days_ago=5, coins_per_block=10), volunteer), volunteer,
                  slot(2, 300))
    assert approve(record, coordinator) == 50
    assert balance_of(volunteer) == 2_147_483_650 > 2**31
    assert system_account(SystemAccount.ISSUANCE).balance == -2_147_483_650
    assert verify_ledger() == []


def test_an_amount_past_the_bound_is_refused_and_writes_nothing(volunteer):
    transfer(TxKind.ADJUST, system_account(SystemAccount.ISSUANCE), user_account(volunteer.id), MAX_COINS,
             actor=None, memo="测试")
    db.session.commit()
    with pytest.raises(AmountOutOfRange):
        transfer(TxKind.ADJUST, system_account(SystemAccount.ISSUANCE), user_account(volunteer.id), MAX_COINS + 1,
                 actor=None)
    db.session.rollback()
    with pytest.raises(AmountOutOfRange):  # each amount fits, but the balance would not
        transfer(TxKind.ADJUST, system_account(SystemAccount.ISSUANCE), user_account(volunteer.id), 1, actor=None)
    db.session.rollback()
    assert balance_of(volunteer) == MAX_COINS
    assert db.session.scalar(select(func.count()).select_from(Transaction)) == 1
    assert AmountOutOfRange.status == 422
