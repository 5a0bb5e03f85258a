"""Random sequences of ledger operations, some of them overdrawing, against a Python model of the balances:
after every step the ledger verifies clean and every balance equals the model's."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import func, select

from credits.errors import InsufficientBalance
from credits.extensions import db
from credits.ledger.models import Account, SystemAccount, Transaction, TxKind
from credits.ledger.services import merchant_account, system_account, transfer, user_account
from credits.ledger.verify import verify_ledger

VOLUNTEERS = 3

volunteer_index = st.integers(min_value=0, max_value=VOLUNTEERS - 1)
# Rules draw amounts up to a little above the source's balance, so some moves must be refused; `overdraw`
# always asks for more than there is, by this much.
overdraw_margin = st.integers(min_value=0, max_value=5)


class LedgerMachine(RuleBasedStateMachine):
    """Each example gets fresh volunteer and merchant accounts; issuance and escrow are shared by every
    example in the test, so the model starts from their balances at the example's start (escrow's is 0)."""

    make_user = None  # set by the test: the make_user fixture
    make_merchant = None  # set by the test: the make_merchant fixture
    outcomes: dict[str, int] = {}  # set by the test: how many moves were posted and refused

    def __init__(self) -> None:
        super().__init__()
        self.volunteers = [user_account(type(self).make_user().id) for _ in range(VOLUNTEERS)]
        self.merchant = merchant_account(type(self).make_merchant().id)
        self.issuance = system_account(SystemAccount.ISSUANCE)
        self.escrow = system_account(SystemAccount.ESCROW)
        db.session.commit()
        self.accounts = [*self.volunteers, self.merchant, self.issuance, self.escrow]
        self.model = {a.id: a.balance for a in self.accounts}
        self.transactions = db.session.scalar(select(func.count()).select_from(Transaction))

    def _move(self, kind: TxKind, source: Account, target: Account, amount: int) -> None:
        """Post one move; the model predicts whether it is refused and what it leaves behind."""
        allowed = source is self.issuance or self.model[source.id] >= amount
        try:
            transfer(kind, source, target, amount)
        except InsufficientBalance:
            assert not allowed, f"{kind} of {amount} refused with {self.model[source.id]} available"
            # No commit: the invariants then also see what the session holds in memory after a refusal.
            type(self).outcomes["refused"] += 1
            return
        assert allowed, f"{kind} of {amount} allowed with only {self.model[source.id]} available"
        db.session.commit()
        type(self).outcomes["posted"] += 1
        self.model[source.id] -= amount
        self.model[target.id] += amount
        self.transactions += 1

    @rule(who=volunteer_index, amount=st.integers(min_value=1, max_value=40))
    def issue(self, who, amount):
        self._move(TxKind.ISSUE, self.issuance, self.volunteers[who], amount)

    @rule(who=volunteer_index, data=st.data())
    def hold(self, who, data):
        volunteer = self.volunteers[who]
        amount = data.draw(st.integers(min_value=1, max_value=self.model[volunteer.id] + 5))
        self._move(TxKind.HOLD, volunteer, self.escrow, amount)

    @rule(who=volunteer_index, data=st.data())
    def release(self, who, data):
        amount = data.draw(st.integers(min_value=1, max_value=self.model[self.escrow.id] + 5))
        self._move(TxKind.RELEASE, self.escrow, self.volunteers[who], amount)

    @rule(giver=volunteer_index, receiver=volunteer_index, data=st.data())
    def transfer_between_volunteers(self, giver, receiver, data):
        if giver == receiver:
            receiver = (receiver + 1) % VOLUNTEERS
        amount = data.draw(st.integers(min_value=1, max_value=self.model[self.volunteers[giver].id] + 5))
        self._move(TxKind.ADJUST, self.volunteers[giver], self.volunteers[receiver], amount)

    @rule(data=st.data())
    def redeem(self, data):
        amount = data.draw(st.integers(min_value=1, max_value=self.model[self.escrow.id] + 5))
        self._move(TxKind.REDEEM, self.escrow, self.merchant, amount)

    @rule(who=volunteer_index, extra=overdraw_margin)
    def overdraw(self, who, extra):
        volunteer = self.volunteers[who]
        self._move(TxKind.HOLD, volunteer, self.escrow, self.model[volunteer.id] + 1 + extra)

    def teardown(self) -> None:
        """Empty escrow into this example's merchant, so every example starts from an empty escrow and a
        failing example replays the same way."""
        db.session.rollback()
        escrow = db.session.scalar(select(Account.balance).where(Account.id == self.escrow.id))
        if escrow:
            transfer(TxKind.REDEEM, self.escrow, self.merchant, escrow)
            db.session.commit()

    @invariant()
    def ledger_verifies_clean(self):
        assert verify_ledger() == []

    @invariant()
    def balances_equal_the_model_in_the_database_and_in_the_session(self):
        rows = db.session.execute(
            select(Account.id, Account.balance, Account.entry_count).where(Account.id.in_(self.model))).all()
        assert {row.id: row.balance for row in rows} == self.model
        assert {a.id: (a.balance, a.entry_count) for a in self.accounts} == {
            row.id: (row.balance, row.entry_count) for row in rows}

    @invariant()
    def every_accepted_operation_is_one_transaction(self):
        assert db.session.scalar(select(func.count()).select_from(Transaction)) == self.transactions


@pytest.mark.slow
def test_random_issue_hold_release_transfer_redeem_sequences_keep_the_ledger_sound(app, make_user, make_merchant):
    # The machine holds coins in escrow without vouchers: only the ledger's own invariants apply, not those the
    # features add (escrow == outstanding vouchers).
    app.extensions["ledger_checks"] = []
    # The system accounts exist before any example's accounts, so account ids (and hence the order in which
    # a transaction updates its accounts) compare the same way in every example and in every replay.
    system_account(SystemAccount.ISSUANCE)
    system_account(SystemAccount.ESCROW)
    db.session.commit()
    outcomes = {"posted": 0, "refused": 0}
    machine = type("Ledger", (LedgerMachine,), {"make_user": staticmethod(make_user),
                                                  "make_merchant": staticmethod(make_merchant), "outcomes": outcomes})
    run_state_machine_as_test(machine, settings=settings(
        max_examples=25, stateful_step_count=20, deadline=None,
        suppress_health_check=[HealthCheck.too_slow]))
    assert outcomes["posted"] > 0 and outcomes["refused"] > 0, outcomes
