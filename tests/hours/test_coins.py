"""The cumulative coin rule of SPEC 2.3: thresholds reached once, remainders carried over, clawbacks up to the
balance with the rest netted against later earnings, replays issuing nothing twice; and the wallet, history,
approved hours and star level that follow from it. Ends with a property test over random sequences."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from credits.auth.models import User
from credits.auth.services import star_level
from credits.errors import DomainError
from credits.extensions import db
from credits.hours import services as hours
from credits.hours.models import CreditState
from credits.ledger.models import Account, SystemAccount, Transaction, TxKind
from credits.ledger.services import find_user_account, system_account, transfer, user_account, wallet_figures
from credits.ledger.verify import verify_ledger
from tests.hours.helpers import approve, confirmed_claim, file, revoke, slot, started_project


def state_of(volunteer, project) -> CreditState:
    state = db.session.get(CreditState, (volunteer.id, project.id))
    db.session.refresh(state)
    return state


def balance_of(user) -> int:
    return db.session.scalar(select(Account.balance).where(Account.user_id == user.id)) or 0


def debt_of(user) -> int:
    return db.session.scalar(select(Account.debt).where(Account.user_id == user.id)) or 0


def spend(volunteer, amount: int, actor) -> None:
    """Take coins out of the volunteer's account (as an admin adjustment would), so that a later clawback finds
    less than it wants."""
    transfer(TxKind.ADJUST, user_account(volunteer.id), system_account(SystemAccount.ISSUANCE), amount,
             actor=actor, memo="测试：已花掉")
    db.session.commit()


def issue_count(record) -> int:
    return db.session.scalar(select(func.count()).select_from(Transaction).where(
        Transaction.kind == TxKind.ISSUE, Transaction.ref_type == "service_record", Transaction.ref_id == record.id))


def test_a_threshold_is_reached_once_and_the_remainder_carries_over(coordinator, volunteer):
    project = started_project(coordinator, block_minutes=60, coins_per_block=1)
    claim = confirmed_claim(project, volunteer)
    issued = [approve(file(claim, volunteer, slot(days, 40)), coordinator) for days in (5, 4, 3)]
    assert issued == [0, 1, 1]
    state = state_of(volunteer, project)
    assert (state.approved_minutes, state.issued_net) == (120, 2)
    assert balance_of(volunteer) == 2
    assert verify_ledger() == []


def test_each_project_carries_its_own_rule(coordinator, volunteer):
    hourly = started_project(coordinator, title="健康加油站", block_minutes=60, coins_per_block=1)
    half_hourly = started_project(coordinator, title="敬老院陪伴", block_minutes=30, coins_per_block=2)
    on_hourly, on_half = confirmed_claim(hourly, volunteer), confirmed_claim(half_hourly, volunteer)
    assert approve(file(on_half, volunteer, slot(6, 40)), coordinator) == 2  # 40 min: one block of 30
    assert approve(file(on_hourly, volunteer, slot(5, 40)), coordinator) == 0  # remainders are per project
    assert approve(file(on_half, volunteer, slot(4, 40)), coordinator) == 2  # 80 min: two blocks
    assert approve(file(on_half, volunteer, slot(3, 10)), coordinator) == 2  # 90 min: three blocks
    assert approve(file(on_hourly, volunteer, slot(2, 50)), coordinator) == 1  # 90 min: one block
    assert (state_of(volunteer, half_hourly).issued_net, state_of(volunteer, hourly).issued_net) == (6, 1)
    assert balance_of(volunteer) == 7
    assert verify_ledger() == []


def test_the_policy_gives_the_default_rule(coordinator, volunteer, set_policy):
    set_policy(block_minutes=45, coins_per_block=3)
    project = started_project(coordinator)
    assert (project.block_minutes, project.coins_per_block) == (45, 3)
    claim = confirmed_claim(project, volunteer)
    assert approve(file(claim, volunteer, slot(3, 100)), coordinator) == 6


def test_revocation_claws_back_up_to_the_balance_and_the_rest_is_the_volunteers_debt(coordinator, volunteer):
    project = started_project(coordinator, block_minutes=60, coins_per_block=1)
    claim = confirmed_claim(project, volunteer)
    assert approve(file(claim, volunteer, slot(6, 60)), coordinator) == 1
    long = file(claim, volunteer, slot(5, 120))
    assert approve(long, coordinator) == 2
    spend(volunteer, 2, coordinator)
    assert balance_of(volunteer) == 1

    assert revoke(long, coordinator) == 1  # owed back 2, only 1 to take
    state = state_of(volunteer, project)
    assert (state.approved_minutes, state.issued_net, state.shortfall, balance_of(volunteer)) == (60, 2, 1, 0)
    assert debt_of(volunteer) == 1
    assert verify_ledger() == []

    assert approve(file(claim, volunteer, slot(4, 60)), coordinator) == 1  # issued, and it pays the debt
    state = state_of(volunteer, project)
    assert (state.approved_minutes, state.issued_net, balance_of(volunteer), debt_of(volunteer)) == (120, 3, 0, 0)
    assert approve(file(claim, volunteer, slot(3, 60)), coordinator) == 1
    state = state_of(volunteer, project)
    assert (state.approved_minutes, state.issued_net, balance_of(volunteer)) == (180, 4, 1)
    assert verify_ledger() == []


def test_a_revocation_within_the_remainder_claws_back_nothing(coordinator, volunteer):
    project = started_project(coordinator, block_minutes=60, coins_per_block=1)
    claim = confirmed_claim(project, volunteer)
    approve(file(claim, volunteer, slot(5, 90)), coordinator)
    small = file(claim, volunteer, slot(4, 20))
    assert approve(small, coordinator) == 0  # 110 minutes: still one block
    assert revoke(small, coordinator) == 0
    assert db.session.scalar(select(func.count()).select_from(Transaction)
                             .where(Transaction.kind == TxKind.CLAWBACK)) == 0
    assert state_of(volunteer, project).issued_net == 1


def test_the_debt_is_the_volunteers_and_hours_on_any_project_pay_it(coordinator, volunteer):
    first = started_project(coordinator, title="健康加油站")
    second = started_project(coordinator, title="敬老院陪伴")
    on_first, on_second = confirmed_claim(first, volunteer), confirmed_claim(second, volunteer)
    record = file(on_first, volunteer, slot(5, 180))
    approve(record, coordinator)
    spend(volunteer, 3, coordinator)
    assert revoke(record, coordinator) == 0  # nothing to take: 3 coins of debt
    assert debt_of(volunteer) == 3
    assert approve(file(on_second, volunteer, slot(4, 120)), coordinator) == 2  # issued on the second project …
    assert (balance_of(volunteer), debt_of(volunteer)) == (0, 1)  # … and taken for the debt at once
    assert state_of(volunteer, first).shortfall == 3
    assert verify_ledger() == []


def test_replaying_an_approval_issues_nothing_twice(coordinator, volunteer):
    project = started_project(coordinator)
    claim = confirmed_claim(project, volunteer)
    record = file(claim, volunteer, slot(3, 150))
    assert approve(record, coordinator) == 2
    with pytest.raises(DomainError) as info:
        hours.approve(record, reviewer=coordinator)
    db.session.rollback()
    assert info.value.code == "invalid_state"
    # Settling the same event again (a retry after the commit) finds nothing owed.
    state = hours._credit_state(volunteer.id, project.id)
    assert hours.settle(state, key=f"hours:{record.id}:approve", record=record, actor=coordinator) == 0
    db.session.commit()
    assert issue_count(record) == 1
    assert (state_of(volunteer, project).issued_net, balance_of(volunteer)) == (2, 2)
    assert verify_ledger() == []


def test_the_issue_transaction_names_its_reason_and_event(coordinator, volunteer):
    project = started_project(coordinator, title="健康加油站")
    claim = confirmed_claim(project, volunteer)
    first = file(claim, volunteer, slot(4, 120))
    approve(first, coordinator)
    second = file(claim, volunteer, slot(3, 70))
    approve(second, coordinator)
    revoke(second, coordinator)
    rows = db.session.scalars(select(Transaction).where(Transaction.ref_type == "service_record")
                              .order_by(Transaction.id)).all()
    assert [(t.kind, t.memo, t.ref_id, t.idempotency_key, t.actor_id) for t in rows] == [
        ("issue", "健康加油站 满 2 小时", first.id, f"hours:{first.id}:approve", coordinator.id),
        ("issue", "健康加油站 满 3 小时", second.id, f"hours:{second.id}:approve", coordinator.id),
        ("clawback", "撤销 健康加油站 时长", second.id, f"hours:{second.id}:revoke", coordinator.id),
    ]
    account = user_account(volunteer.id)
    assert [(e.account_id, e.amount) for e in rows[0].entries if e.account_id == account.id] == [(account.id, 2)]


def test_memo_counts_hours_by_the_rule(coordinator, volunteer):
    project = started_project(coordinator, title="敬老院陪伴", block_minutes=45, coins_per_block=2)
    claim = confirmed_claim(project, volunteer)
    approve(file(claim, volunteer, slot(3, 100)), coordinator)  # two blocks of 45 min
    assert db.session.scalar(select(Transaction.memo).where(Transaction.kind == TxKind.ISSUE)) == (
        "敬老院陪伴 满 1.5 小时")


def test_wallet_and_history_match_the_ledger(coordinator, volunteer, client, token_for):
    project = started_project(coordinator, title="健康加油站")
    claim = confirmed_claim(project, volunteer)
    approve(file(claim, volunteer, slot(5, 60)), coordinator)
    long = file(claim, volunteer, slot(4, 120))
    approve(long, coordinator)
    spend(volunteer, 2, coordinator)
    revoke(long, coordinator)
    approve(file(claim, volunteer, slot(3, 120)), coordinator)

    figures = wallet_figures(find_user_account(volunteer.id))
    # The revocation took 1 of the 2 it owed; the other was the debt, paid from the next approval.
    assert figures == {"balance": 1, "held": 0, "spent": 0, "expired": 0, "debt": 0,
                       "earned": 1 + 2 - 1 - 2 + 2 - 1}  # issues, clawbacks and the adjustment, net
    headers = token_for(volunteer)
    assert client.get("/api/v1/me/wallet", headers=headers).json == figures

    body = client.get("/api/v1/me/transactions?per_page=100", headers=headers).json
    assert body["total"] == 6 and body["page"] == 1
    assert [(t["kind"], t["amount"], t["balance_after"]) for t in body["items"]] == [
        ("clawback", -1, 1), ("issue", 2, 2), ("clawback", -1, 0), ("adjust", -2, 1), ("issue", 2, 3),
        ("issue", 1, 1)]
    assert body["items"][0]["memo"] == "抵扣欠币 1 枚"
    assert body["items"][1]["memo"] == "健康加油站 满 3 小时"
    assert body["items"][0]["created_at"].endswith("+08:00")
    page = client.get("/api/v1/me/transactions?per_page=2&page=3", headers=headers).json
    assert [item["kind"] for item in page["items"]] == ["issue", "issue"] and page["total"] == 6


def test_approved_hours_and_star_level_follow_approvals_and_revocations(coordinator, volunteer, client,
                                                                          token_for):
    project = started_project(coordinator)
    claim = confirmed_claim(project, volunteer)
    records = [file(claim, volunteer, slot(days, 12 * 60, hour=8)) for days in range(2, 11)]  # 9 × 12 h
    for record in records:
        approve(record, coordinator)
    db.session.refresh(volunteer)
    assert volunteer.approved_minutes == 9 * 720 and star_level(volunteer.approved_minutes) == 1
    me = client.get("/api/v1/me", headers=token_for(volunteer)).json
    assert (me["approved_minutes"], me["star_level"]) == (6480, 1)

    revoke(records[0], coordinator)
    db.session.refresh(volunteer)
    assert volunteer.approved_minutes == 8 * 720 and star_level(volunteer.approved_minutes) == 0
    # Spending coins never reduces hours.
    spend(volunteer, 50, coordinator)
    db.session.refresh(volunteer)
    assert volunteer.approved_minutes == 8 * 720
    assert verify_ledger() == []


# --- property: random approvals, revocations and spending across projects with different rules ------------

RULES = [(60, 1), (30, 2), (45, 3)]
VOLUNTEERS = 2

operation = st.one_of(
    st.tuples(st.just("approve"), st.integers(0, VOLUNTEERS - 1), st.integers(0, 2), st.integers(1, 240)),
    st.tuples(st.just("revoke"), st.integers(0, 1000)),
    st.tuples(st.just("spend"), st.integers(0, VOLUNTEERS - 1), st.integers(1, 6)),
)


class Model:
    """The rule of SPEC 2.3 worked out by hand, to compare the database with."""

    def __init__(self, projects) -> None:
        self.projects = projects
        self.minutes: dict[tuple[int, int], int] = {}
        self.issued: dict[tuple[int, int], int] = {}
        self.shortfall: dict[tuple[int, int], int] = {}
        self.balance = [0] * VOLUNTEERS
        self.debt = [0] * VOLUNTEERS

    def change(self, v: int, p: int, minutes: int) -> int:
        key = (v, p)
        self.minutes[key] = self.minutes.get(key, 0) + minutes
        block, per = RULES[p]
        delta = self.minutes[key] // block * per - (self.issued.get(key, 0) - self.shortfall.get(key, 0))
        if delta > 0:  # issued, and the debt paid from it first
            self.issued[key] = self.issued.get(key, 0) + delta
            paid = min(self.debt[v], delta)
            self.balance[v] += delta - paid
            self.debt[v] -= paid
            return delta
        claw = min(-delta, self.balance[v])
        self.issued[key] = self.issued.get(key, 0) - claw
        self.shortfall[key] = self.shortfall.get(key, 0) + (-delta - claw)
        self.debt[v] += -delta - claw
        self.balance[v] -= claw
        return -claw


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(project_count=st.integers(2, 3), steps=st.lists(operation, min_size=1, max_size=14))
def test_issued_net_less_the_shortfall_is_always_earned_and_the_debt_is_what_is_unpaid(app, make_org, make_user,
                                                                                      project_count, steps):
    org = make_org()
    coordinator = make_user("coordinator", organization=org)
    volunteers = [make_user("volunteer") for _ in range(VOLUNTEERS)]
    projects = [started_project(coordinator, title=f"项目{i}", block_minutes=b, coins_per_block=c)
                for i, (b, c) in enumerate(RULES[:project_count])]
    claims = {(v, p): confirmed_claim(project, volunteer)
              for v, volunteer in enumerate(volunteers) for p, project in enumerate(projects)}
    model = Model(projects)
    approved: list[tuple[int, int, object]] = []

    for day, step in enumerate(steps, start=1):
        if step[0] == "approve":
            _, v, p, minutes = step
            p %= project_count
            record = file(claims[(v, p)], volunteers[v], slot(day, minutes, hour=8))  # one day per step
            assert approve(record, coordinator) == model.change(v, p, minutes)
            approved.append((v, p, record))
        elif step[0] == "revoke" and approved:
            v, p, record = approved.pop(step[1] % len(approved))
            assert revoke(record, coordinator) == -model.change(v, p, -record.minutes)
        elif step[0] == "spend":
            _, v, amount = step
            amount = min(amount, model.balance[v])
            if amount:
                spend(volunteers[v], amount, coordinator)
                model.balance[v] -= amount

        for v, p in claims:
            state = db.session.get(CreditState, (volunteers[v].id, projects[p].id))
            if state is None:
                assert model.minutes.get((v, p), 0) == 0
                continue
            db.session.refresh(state)
            earned = hours.earned_coins(state.approved_minutes, projects[p])
            assert state.approved_minutes == model.minutes[(v, p)]
            assert state.issued_net == model.issued[(v, p)]
            assert state.shortfall == model.shortfall.get((v, p), 0)
            assert state.issued_net - state.shortfall == earned
        for v, volunteer in enumerate(volunteers):
            assert balance_of(volunteer) == model.balance[v] >= 0
            assert debt_of(volunteer) == model.debt[v] >= 0
            if model.debt[v]:
                event("debt outstanding")
            minutes = db.session.scalar(select(User.approved_minutes).where(User.id == volunteer.id))
            assert minutes == sum(m for (w, _), m in model.minutes.items() if w == v)
        assert db.session.scalar(select(func.count()).select_from(Account).where(
            Account.balance < 0, Account.system_code.is_distinct_from(SystemAccount.ISSUANCE.value))) == 0
        assert verify_ledger() == []
