"""`flask credits verify-ledger`: exit 0 on a sound ledger, exit 1 naming the account and the invariant when
someone has changed balances, entries or constraints behind the ledger's back.

Damage needs the database's own guards out of the way (append-only triggers, the not-negative CHECK). On
PostgreSQL the test database is shared by the whole session, so each test puts back what it removed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import select, text

from credits.extensions import db
from credits.ledger.models import Account, Entry, SystemAccount, Transaction, TxKind
from credits.ledger.services import merchant_account, system_account, transfer, user_account

TRIGGERS_SQLITE = {
    f"{table}_no_{verb.lower()}": f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                                  "BEGIN SELECT RAISE(ABORT, 'ledger rows are append-only'); END"
    for table in ("ledger_entries", "ledger_transactions") for verb in ("UPDATE", "DELETE")
}
NOT_NEGATIVE = "CHECK (balance >= 0 OR system_code = 'issuance')"


def is_postgres() -> bool:
    return db.engine.dialect.name == "postgresql"


def sql(statement: str, **params) -> None:
    db.session.execute(text(statement), params)


@contextmanager
def append_only_lifted(table: str = "ledger_entries") -> Iterator[None]:
    """Drop the triggers that keep `table` append-only; put them back afterwards."""
    if is_postgres():
        sql(f"DROP TRIGGER {table}_append_only ON {table}")
    else:
        for verb in ("update", "delete"):
            sql(f"DROP TRIGGER {table}_no_{verb}")
    db.session.commit()
    try:
        yield
    finally:
        db.session.rollback()
        if is_postgres():
            sql(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION ledger_append_only()")
        else:
            for verb in ("update", "delete"):
                sql(TRIGGERS_SQLITE[f"{table}_no_{verb}"])
        db.session.commit()


@contextmanager
def balance_forced(account: Account, balance: int) -> Iterator[None]:
    """Write a balance the CHECK constraint refuses; restore the old balance and the constraint afterwards."""
    account_id, old = account.id, account.balance
    if is_postgres():
        sql("ALTER TABLE accounts DROP CONSTRAINT ck_accounts_not_negative")
        sql("UPDATE accounts SET balance = :b WHERE id = :id", b=balance, id=account_id)
    else:
        sql("PRAGMA ignore_check_constraints = ON")
        sql("UPDATE accounts SET balance = :b WHERE id = :id", b=balance, id=account_id)
        sql("PRAGMA ignore_check_constraints = OFF")
    db.session.commit()
    try:
        yield
    finally:
        db.session.rollback()
        sql("UPDATE accounts SET balance = :b WHERE id = :id", b=old, id=account_id)
        if is_postgres():
            sql(f"ALTER TABLE accounts ADD CONSTRAINT ck_accounts_not_negative {NOT_NEGATIVE}")
        db.session.commit()


def verify(runner):
    return runner.invoke(args=["credits", "verify-ledger"])


def label(account: Account) -> str:
    owner = account.system_code or f"{account.kind} {account.user_id or account.merchant_id}"
    return f"account {account.id} ({owner})"


@pytest.fixture
def ledger(app, make_user, make_merchant):
    """A small sound ledger: two volunteers, coins issued, one held in escrow, one redeemed at a shop."""
    alice, bob = user_account(make_user().id), user_account(make_user().id)
    issuance, escrow = system_account(SystemAccount.ISSUANCE), system_account(SystemAccount.ESCROW)
    shop = merchant_account(make_merchant().id)
    transfer(TxKind.ISSUE, issuance, alice, 10)
    transfer(TxKind.ISSUE, issuance, bob, 6)
    transfer(TxKind.ADJUST, alice, bob, 3)
    transfer(TxKind.HOLD, bob, escrow, 4)
    transfer(TxKind.REDEEM, escrow, shop, 4)
    db.session.commit()
    return {"alice": alice, "bob": bob, "escrow": escrow, "shop": shop, "issuance": issuance}


def last_entry(account: Account) -> Entry:
    return db.session.scalars(select(Entry).where(Entry.account_id == account.id)
                              .order_by(Entry.seq.desc()).limit(1)).one()


def test_sound_ledger_verifies_with_exit_0(runner, ledger):
    assert ledger["issuance"].balance == -16  # issuance running negative is how coins come to exist

    result = verify(runner)

    assert result.exit_code == 0, result.output
    assert "ledger ok" in result.output
    assert "BREACH" not in result.output


def test_empty_ledger_verifies_with_exit_0(runner):
    result = verify(runner)
    assert result.exit_code == 0, result.output


def test_cached_balance_changed_by_sql_fails_invariant_2_naming_the_account(runner, ledger):
    alice = ledger["alice"]
    sql("UPDATE accounts SET balance = balance + 5 WHERE id = :id", id=alice.id)
    db.session.commit()

    result = verify(runner)

    assert result.exit_code == 1
    assert f"invariant 2 [{label(alice)}]" in result.output
    assert "cached balance 12" in result.output and "entries sum to 7" in result.output
    assert label(ledger["bob"]) not in result.output


def test_every_account_whose_balance_changed_is_named(runner, ledger):
    sql("UPDATE accounts SET balance = balance + 5")
    db.session.commit()

    result = verify(runner)

    assert result.exit_code == 1
    for account in ledger.values():
        assert f"invariant 2 [{label(account)}]" in result.output


def test_entry_amount_changed_by_sql_fails_invariants_1_and_6(runner, ledger):
    alice = ledger["alice"]
    entry = last_entry(alice)
    with append_only_lifted():
        sql("UPDATE ledger_entries SET amount = amount - 1 WHERE id = :id", id=entry.id)
        db.session.commit()

        result = verify(runner)

    assert result.exit_code == 1
    assert f"invariant 1 [{label(alice)}, {label(ledger['bob'])}]" in result.output \
        or f"invariant 1 [{label(ledger['bob'])}, {label(alice)}]" in result.output
    assert f"transaction {entry.transaction_id} has 2 entries summing to -1" in result.output
    assert f"invariant 6 [{label(alice)}]" in result.output


def test_transaction_amount_changed_by_sql_fails_invariant_1_naming_both_figures(runner, ledger):
    entry = last_entry(ledger["alice"])
    moved = db.session.get(Transaction, entry.transaction_id).amount
    with append_only_lifted("ledger_transactions"):
        sql("UPDATE ledger_transactions SET amount = amount + 5 WHERE id = :id", id=entry.transaction_id)
        db.session.commit()

        result = verify(runner)

    assert result.exit_code == 1
    assert (f"transaction {entry.transaction_id} records amount {moved + 5} but its entries move {moved}"
            in result.output)


def test_entry_balance_after_changed_by_sql_fails_invariant_6_only(runner, ledger):
    bob = ledger["bob"]
    first = db.session.scalars(select(Entry).where(Entry.account_id == bob.id, Entry.seq == 1)).one()
    with append_only_lifted():
        sql("UPDATE ledger_entries SET balance_after = balance_after + 100 WHERE id = :id", id=first.id)
        db.session.commit()

        result = verify(runner)

    assert result.exit_code == 1
    breaches = [line for line in result.output.splitlines() if line.startswith("BREACH")]
    assert breaches == [f"BREACH invariant 6 [{label(bob)}]: entry {first.id} (seq 1): balance_after 106 "
                        "differs from the running sum 6"]


def test_deleted_entry_is_caught(runner, ledger):
    alice = ledger["alice"]
    first = db.session.scalars(select(Entry).where(Entry.account_id == alice.id, Entry.seq == 1)).one()
    entry_id, transaction_id = first.id, first.transaction_id
    with append_only_lifted():
        sql("DELETE FROM ledger_entries WHERE id = :id", id=entry_id)
        db.session.commit()

        result = verify(runner)

    assert result.exit_code == 1
    assert f"transaction {transaction_id} has 1 entries summing to -10" in result.output
    assert f"invariant 2 [{label(alice)}]" in result.output
    assert f"invariant 6 [{label(alice)}]" in result.output and "a gap in the entry sequence" in result.output


def test_transaction_without_entries_fails_invariant_1(runner, ledger):
    sql("INSERT INTO ledger_transactions (kind, fingerprint, created_at, memo, amount) "
        "VALUES ('adjust', 'x', CURRENT_TIMESTAMP, 'empty', 1)")
    db.session.commit()
    empty = db.session.scalar(select(Transaction.id).where(Transaction.memo == "empty"))

    result = verify(runner)

    assert result.exit_code == 1
    assert f"invariant 1: transaction {empty} has 0 entries summing to 0" in result.output


@pytest.mark.parametrize("who", ["alice", "shop", "escrow"])
def test_negative_balance_forced_by_sql_fails_invariant_3(runner, ledger, who):
    account = ledger[who]
    with balance_forced(account, -3):
        result = verify(runner)

    assert result.exit_code == 1
    assert f"invariant 3 [{label(account)}]: balance is -3" in result.output


def test_ledger_verifies_again_once_the_damage_is_reverted(runner, ledger):
    with balance_forced(ledger["bob"], -1):
        assert verify(runner).exit_code == 1

    result = verify(runner)

    assert result.exit_code == 0, result.output
    assert db.session.get(Account, ledger["bob"].id).balance == 5
