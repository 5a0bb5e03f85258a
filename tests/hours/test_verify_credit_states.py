"""Invariant 5 in verify-ledger: a credit state that disagrees with its records or with the ledger is named, and so is
a debt that disagrees with the shortfalls and the payments."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from credits.extensions import db
from credits.hours import services as hours
from credits.hours.models import CreditState
from credits.ledger.models import Account, SystemAccount, TxKind
from credits.ledger.services import system_account, transfer, user_account
from credits.ledger.verify import verify_ledger
from tests.hours.helpers import approve, confirmed_claim, file, slot, started_project


@pytest.fixture
def state(coordinator, volunteer):
    """One approved record of 150 minutes on a 60-minute, 2-coin rule: 4 coins issued."""
    project = started_project(coordinator, block_minutes=60, coins_per_block=2)
    approve(file(confirmed_claim(project, volunteer), volunteer, slot(2, 150)), coordinator)
    return db.session.get(CreditState, (volunteer.id, project.id))


def tamper(state: CreditState, **values) -> None:
    sets = ", ".join(f"{column} = :{column}" for column in values)
    db.session.execute(text(f"UPDATE credit_states SET {sets} WHERE volunteer_id = :v AND project_id = :p"),
                       {**values, "v": state.volunteer_id, "p": state.project_id})
    db.session.commit()


def messages() -> list[str]:
    return [str(breach) for breach in verify_ledger()]


def test_a_sound_credit_state_verifies(state):
    assert (state.approved_minutes, state.issued_net) == (150, 4)
    assert messages() == []


def test_minutes_that_differ_from_the_approved_records_are_named(state):
    tamper(state, approved_minutes=90)

    label = f"volunteer {state.volunteer_id} project {state.project_id}"
    assert messages() == [f"invariant 5 [{label}]: credit state has 90 approved minutes, records 150",
                          f"invariant 5 [{label}]: issued_net 4 less shortfall 0 is not the 2 coins its minutes earn"]


def test_issued_coins_that_differ_from_the_ledger_are_named(state):
    tamper(state, issued_net=6)

    label = f"volunteer {state.volunteer_id} project {state.project_id}"
    assert messages() == [f"invariant 5 [{label}]: issued_net 6 but the ledger holds 4",
                          f"invariant 5 [{label}]: issued_net 6 less shortfall 0 is not the 4 coins its minutes earn"]


def test_issued_coins_below_what_the_minutes_earn_are_named(state):
    tamper(state, issued_net=2)

    label = f"volunteer {state.volunteer_id} project {state.project_id}"
    assert messages() == [f"invariant 5 [{label}]: issued_net 2 but the ledger holds 4",
                          f"invariant 5 [{label}]: issued_net 2 less shortfall 0 is not the 4 coins its minutes earn"]


def test_a_shortfall_no_debt_matches_is_named_twice(state):
    """A shortfall written by hand breaks both the pair (issued − shortfall ≠ earned) and the debt it should be."""
    tamper(state, shortfall=1)

    label = f"volunteer {state.volunteer_id} project {state.project_id}"
    account = db.session.scalars(select(Account).filter_by(user_id=state.volunteer_id)).one()
    assert messages() == [
        f"invariant 5 [{label}]: issued_net 4 less shortfall 1 is not the 4 coins its minutes earn",
        f"invariant 5 [account {account.id} (volunteer {state.volunteer_id})]: debt 0 but shortfalls 1 less "
        "payments 0 leave 1"]


def test_a_debt_written_off_by_hand_is_named(coordinator, volunteer):
    """The clawback escape closed: a debt that disappears without a payment in the ledger is a breach."""
    project = started_project(coordinator, block_minutes=60, coins_per_block=2)
    record = approve_and_spend_all(project, coordinator, volunteer)
    hours.revoke(record, "核实有误", reviewer=coordinator)
    db.session.commit()
    account = db.session.scalars(select(Account).filter_by(user_id=volunteer.id)).one()
    assert (account.debt, messages()) == (4, [])
    db.session.execute(text("UPDATE accounts SET debt = 0 WHERE id = :id"), {"id": account.id})
    db.session.commit()

    assert messages() == [f"invariant 5 [account {account.id} (volunteer {volunteer.id})]: debt 0 but shortfalls "
                          "4 less payments 0 leave 4"]


def approve_and_spend_all(project, coordinator, volunteer):
    record = file(confirmed_claim(project, volunteer), volunteer, slot(2, 150))
    approve(record, coordinator)
    transfer(TxKind.ADJUST, user_account(volunteer.id), system_account(SystemAccount.ISSUANCE), 4, actor=coordinator)
    db.session.commit()
    return record


def test_a_missing_credit_state_is_named(state):
    label = f"volunteer {state.volunteer_id} project {state.project_id}"
    db.session.execute(text("DELETE FROM credit_states WHERE volunteer_id = :v AND project_id = :p"),
                       {"v": state.volunteer_id, "p": state.project_id})
    db.session.commit()

    assert messages() == [f"invariant 5 [{label}]: credit state has 0 approved minutes, records 150",
                          f"invariant 5 [{label}]: issued_net 0 but the ledger holds 4"]
