"""The ledger's rules through its service: balanced posts, refusals that write nothing, idempotent replays,
numbered entries, and a database that refuses to rewrite history."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from credits.database import in_transaction
from credits.errors import IdempotencyConflict, InsufficientBalance
from credits.extensions import db
from credits.ledger.models import Account, Entry, SystemAccount, Transaction, TxKind
from credits.ledger.services import Move, merchant_account, post, system_account, transfer, user_account


@pytest.fixture
def volunteer(make_user):
    """A fresh volunteer account, created (and committed) on demand."""

    def factory() -> Account:
        account = user_account(make_user().id)
        db.session.commit()
        return account

    return factory


def issue(account: Account, amount: int, **kwargs) -> Transaction:
    tx = transfer(TxKind.ISSUE, system_account(SystemAccount.ISSUANCE), account, amount, **kwargs)
    db.session.commit()
    return tx


def stored_balance(account: Account) -> int:
    """The balance in the database, whatever the session holds in memory."""
    return db.session.scalar(select(Account.balance).where(Account.id == account.id))


def entries_of(account: Account) -> list[Entry]:
    return list(db.session.scalars(select(Entry).where(Entry.account_id == account.id).order_by(Entry.seq)))


def transaction_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Transaction))


def entry_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Entry))


# --- balanced posts -----------------------------------------------------------------------------------


def test_post_writes_entries_that_sum_to_zero_and_moves_both_balances(app, volunteer):
    alice, bob = volunteer(), volunteer()
    issue(alice, 30)

    tx = transfer(TxKind.ADJUST, alice, bob, 12, memo="纠正")
    db.session.commit()

    amounts = {e.account_id: e.amount for e in tx.entries}
    assert amounts == {alice.id: -12, bob.id: 12}
    assert sum(amounts.values()) == 0
    assert (stored_balance(alice), stored_balance(bob)) == (18, 12)
    assert (alice.balance, bob.balance) == (18, 12)
    assert tx.kind == "adjust" and tx.memo == "纠正"


def test_post_records_actor_and_reference(app, make_user, volunteer):
    coordinator = make_user("coordinator")
    alice = volunteer()

    tx = issue(alice, 5, actor=coordinator, ref=("service_record", 42))

    stored = db.session.get(Transaction, tx.id)
    assert (stored.actor_id, stored.ref_type, stored.ref_id) == (coordinator.id, "service_record", 42)


def test_post_nets_moves_per_account_and_skips_accounts_that_net_to_zero(app, volunteer):
    alice, bob, carol = volunteer(), volunteer(), volunteer()
    issue(alice, 20)

    tx = post(TxKind.ADJUST, [Move(alice, bob, 7), Move(bob, carol, 7), Move(alice, carol, 3)])
    db.session.commit()

    assert {e.account_id: e.amount for e in tx.entries} == {alice.id: -10, carol.id: 10}
    assert entries_of(bob) == []
    assert (stored_balance(alice), stored_balance(bob), stored_balance(carol)) == (10, 0, 10)


def test_post_with_several_moves_into_one_account_writes_one_entry_with_their_sum(app, volunteer):
    alice = volunteer()
    issuance = system_account(SystemAccount.ISSUANCE)

    tx = post(TxKind.ISSUE, [Move(issuance, alice, 4), Move(issuance, alice, 6)])
    db.session.commit()

    assert [(e.account_id, e.amount) for e in tx.entries if e.account_id == alice.id] == [(alice.id, 10)]
    assert stored_balance(alice) == 10


# --- refusals write nothing ---------------------------------------------------------------------------


def test_refused_post_leaves_balances_and_transactions_unchanged(app, volunteer):
    alice, bob = volunteer(), volunteer()
    issue(alice, 10)
    issue(bob, 4)
    before = (transaction_count(), entry_count())

    with pytest.raises(InsufficientBalance):
        transfer(TxKind.ADJUST, alice, bob, 11)

    assert (transaction_count(), entry_count()) == before
    assert (stored_balance(alice), stored_balance(bob)) == (10, 4)
    db.session.commit()
    assert (transaction_count(), entry_count()) == before


def test_refused_post_keeps_in_memory_balance_of_an_account_credited_before_the_refusal(app, volunteer):
    # Accounts are updated in id order, so the credit to the older account is applied (then undone by the
    # savepoint) before the newer account's debit is refused; the session must not keep the undone value.
    older, newer = volunteer(), volunteer()
    issue(newer, 3)
    assert older.id < newer.id

    with pytest.raises(InsufficientBalance):
        transfer(TxKind.ADJUST, newer, older, 5)

    assert (older.balance, older.entry_count) == (0, 0)
    assert (newer.balance, newer.entry_count) == (3, 1)
    assert (stored_balance(older), stored_balance(newer)) == (0, 3)


def test_refused_post_leaves_the_outer_session_usable_for_the_next_post(app, volunteer):
    alice, bob = volunteer(), volunteer()
    issue(alice, 10)

    with pytest.raises(InsufficientBalance):
        transfer(TxKind.ADJUST, alice, bob, 50)
    tx = transfer(TxKind.ADJUST, alice, bob, 6)
    db.session.commit()

    assert db.session.get(Transaction, tx.id) is not None
    assert (stored_balance(alice), stored_balance(bob)) == (4, 6)
    assert [e.seq for e in entries_of(alice)] == [1, 2]


def test_refused_post_undoes_the_moves_of_the_same_transaction_that_were_already_applied(app, volunteer):
    rich, poor, target = volunteer(), volunteer(), volunteer()
    issue(rich, 100)
    issue(poor, 1)
    before = (transaction_count(), entry_count())

    with pytest.raises(InsufficientBalance):
        post(TxKind.ADJUST, [Move(rich, target, 40), Move(poor, target, 2)])
    db.session.commit()

    assert (transaction_count(), entry_count()) == before
    assert (stored_balance(rich), stored_balance(poor), stored_balance(target)) == (100, 1, 0)


def test_refused_unit_of_work_leaves_nothing_for_the_next_commit(app, volunteer):
    alice, bob = volunteer(), volunteer()
    issue(alice, 10)

    def work_that_fails():
        transfer(TxKind.ADJUST, alice, bob, 3)  # flushed, then the unit fails
        transfer(TxKind.ADJUST, alice, bob, 30)

    with pytest.raises(InsufficientBalance):
        in_transaction(work_that_fails)
    in_transaction(lambda: transfer(TxKind.ADJUST, alice, bob, 1))

    assert (stored_balance(alice), stored_balance(bob)) == (9, 1)
    assert len(entries_of(bob)) == 1


def test_issuance_may_go_negative(app, volunteer):
    alice = volunteer()
    issuance = system_account(SystemAccount.ISSUANCE)

    issue(alice, 25)
    issue(alice, 5)

    assert stored_balance(issuance) == -30
    assert stored_balance(alice) == 30


@pytest.mark.parametrize("code", [SystemAccount.ESCROW, SystemAccount.EXPIRED, SystemAccount.SETTLED])
def test_system_accounts_other_than_issuance_cannot_go_negative(app, volunteer, code):
    alice = volunteer()
    account = system_account(code)
    issue(alice, 2)
    transfer(TxKind.ADJUST, alice, account, 2)
    db.session.commit()

    with pytest.raises(InsufficientBalance):
        transfer(TxKind.ADJUST, account, alice, 3)

    assert stored_balance(account) == 2
    transfer(TxKind.ADJUST, account, alice, 2)
    db.session.commit()
    assert stored_balance(account) == 0


def test_volunteer_and_merchant_accounts_cannot_go_negative(app, volunteer, make_merchant):
    alice = volunteer()
    shop = merchant_account(make_merchant().id)
    issue(alice, 5)
    transfer(TxKind.ADJUST, alice, shop, 5)
    db.session.commit()

    with pytest.raises(InsufficientBalance):
        transfer(TxKind.ADJUST, alice, shop, 1)
    with pytest.raises(InsufficientBalance):
        transfer(TxKind.SETTLE, shop, system_account(SystemAccount.SETTLED), 6)

    assert (stored_balance(alice), stored_balance(shop)) == (0, 5)


# --- idempotency --------------------------------------------------------------------------------------


def test_replay_with_the_same_idempotency_key_returns_the_first_transaction_and_moves_nothing(app, volunteer):
    alice = volunteer()
    first_id = issue(alice, 8, idempotency_key="approve-1", ref=("service_record", 1)).id
    user_id = alice.user_id
    db.session.expunge_all()  # a retry arrives later, in another request
    retried = user_account(user_id)

    again = issue(retried, 8, idempotency_key="approve-1", ref=("service_record", 1))

    assert again.id == first_id
    assert transaction_count() == 1
    assert stored_balance(retried) == 8


def test_replay_within_the_same_session_returns_the_same_transaction(app, volunteer):
    alice = volunteer()
    issuance = system_account(SystemAccount.ISSUANCE)

    first = transfer(TxKind.ISSUE, issuance, alice, 3, idempotency_key="k")
    again = transfer(TxKind.ISSUE, issuance, alice, 3, idempotency_key="k")
    db.session.commit()

    assert again is first
    assert stored_balance(alice) == 3


@pytest.mark.parametrize("change", ["amount", "target", "kind", "ref"])
def test_same_idempotency_key_with_different_content_raises_conflict(app, volunteer, change):
    alice, bob = volunteer(), volunteer()
    issuance = system_account(SystemAccount.ISSUANCE)
    issue(alice, 5, idempotency_key="key-1", ref=("voucher", 1))
    before = (transaction_count(), stored_balance(alice), stored_balance(bob))

    kind, target, amount, ref = TxKind.ISSUE, alice, 5, ("voucher", 1)
    if change == "amount":
        amount = 6
    elif change == "target":
        target = bob
    elif change == "kind":
        kind = TxKind.ADJUST
    else:
        ref = ("voucher", 2)
    with pytest.raises(IdempotencyConflict):
        transfer(kind, issuance, target, amount, idempotency_key="key-1", ref=ref)

    assert (transaction_count(), stored_balance(alice), stored_balance(bob)) == before


def test_posts_without_idempotency_key_are_never_deduplicated(app, volunteer):
    alice = volunteer()

    issue(alice, 2)
    issue(alice, 2)

    assert transaction_count() == 2
    assert stored_balance(alice) == 4


# --- invalid moves ------------------------------------------------------------------------------------


@pytest.mark.parametrize("amount", [0, -5, 1.5, 2.0, True, "3", None])
def test_move_amount_that_is_not_a_positive_integer_raises_value_error(app, volunteer, amount):
    alice, bob = volunteer(), volunteer()
    issue(alice, 10)

    with pytest.raises(ValueError):
        transfer(TxKind.ADJUST, alice, bob, amount)

    assert transaction_count() == 1
    assert stored_balance(alice) == 10


def test_post_without_moves_raises_value_error(app):
    with pytest.raises(ValueError):
        post(TxKind.ADJUST, [])
    assert transaction_count() == 0


def test_move_from_an_account_to_itself_raises_value_error(app, volunteer):
    alice = volunteer()
    issue(alice, 10)

    with pytest.raises(ValueError):
        transfer(TxKind.ADJUST, alice, alice, 1)

    assert [e.seq for e in entries_of(alice)] == [1]


def test_moves_that_cancel_out_raise_value_error(app, volunteer):
    alice, bob = volunteer(), volunteer()
    issue(alice, 10)
    issue(bob, 10)

    with pytest.raises(ValueError):
        post(TxKind.ADJUST, [Move(alice, bob, 4), Move(bob, alice, 4)])

    assert transaction_count() == 2


def test_unknown_transaction_kind_raises_value_error(app, volunteer):
    alice = volunteer()

    with pytest.raises(ValueError):
        transfer("gift", system_account(SystemAccount.ISSUANCE), alice, 1)

    assert transaction_count() == 0


# --- numbered entries ---------------------------------------------------------------------------------


def test_entries_of_an_account_are_numbered_1_2_3_with_the_running_balance(app, volunteer):
    alice, bob = volunteer(), volunteer()

    issue(alice, 10)
    transfer(TxKind.ADJUST, alice, bob, 4)
    issue(alice, 7)
    db.session.commit()

    assert [(e.seq, e.amount, e.balance_after) for e in entries_of(alice)] == [(1, 10, 10), (2, -4, 6),
                                                                                (3, 7, 13)]
    assert [(e.seq, e.amount, e.balance_after) for e in entries_of(bob)] == [(1, 4, 4)]
    refreshed = db.session.get(Account, alice.id)
    db.session.refresh(refreshed)
    assert (refreshed.balance, refreshed.entry_count) == (13, 3)


def test_refused_post_leaves_no_gap_in_entry_numbers(app, volunteer):
    alice, bob = volunteer(), volunteer()
    issue(alice, 5)

    with pytest.raises(InsufficientBalance):
        transfer(TxKind.ADJUST, alice, bob, 6)
    transfer(TxKind.ADJUST, alice, bob, 5)
    issue(bob, 1)

    assert [e.seq for e in entries_of(alice)] == [1, 2]
    assert [(e.seq, e.balance_after) for e in entries_of(bob)] == [(1, 5), (2, 6)]


# --- append-only --------------------------------------------------------------------------------------


@pytest.mark.parametrize("statement", [
    "UPDATE ledger_entries SET amount = amount + 1",
    "UPDATE ledger_entries SET balance_after = 0",
    "DELETE FROM ledger_entries",
    "UPDATE ledger_transactions SET memo = 'rewritten'",
    "DELETE FROM ledger_transactions",
])
def test_database_refuses_to_update_or_delete_ledger_rows(app, volunteer, statement):
    alice = volunteer()
    issue(alice, 9, memo="original")
    before = [(e.id, e.amount, e.balance_after) for e in entries_of(alice)]

    with pytest.raises(DBAPIError):
        db.session.execute(text(statement))
    db.session.rollback()

    assert [(e.id, e.amount, e.balance_after) for e in entries_of(alice)] == before
    assert db.session.scalar(select(Transaction.memo)) == "original"
    assert entry_count() == 2
