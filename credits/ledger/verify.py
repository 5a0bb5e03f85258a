"""The ledger's invariants (SPEC 2.5), each checked by one SQL query over the whole ledger."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from sqlalchemy import case, func, or_, select

from credits.extensions import db
from credits.ledger.models import Account, Entry, SystemAccount, Transaction


@dataclass(frozen=True)
class Breach:
    invariant: int
    account: str | None
    message: str

    def __str__(self) -> str:
        where = f" [{self.account}]" if self.account else ""
        return f"invariant {self.invariant}{where}: {self.message}"


def _label(account: Account) -> str:
    owner = account.system_code or f"{account.kind} {account.user_id or account.merchant_id}"
    return f"account {account.id} ({owner})"


def _transactions_balance() -> list[Breach]:
    """Entries sum to zero, and the transaction's `amount` (what the reports sum) is what its entries move."""
    moved = func.coalesce(func.sum(case((Entry.amount > 0, Entry.amount), else_=0)), 0)
    sums = (select(Transaction.id, Transaction.amount, func.coalesce(func.sum(Entry.amount), 0).label("total"),
                   moved.label("moved"), func.count(Entry.id).label("n"))
            .outerjoin(Entry, Entry.transaction_id == Transaction.id)
            .group_by(Transaction.id, Transaction.amount).subquery())
    rows = db.session.execute(select(sums).where(
        or_(sums.c.total != 0, sums.c.n == 0, sums.c.moved != sums.c.amount))).all()
    breaches = []
    for row in rows:
        accounts = db.session.scalars(select(Account).join(Entry, Entry.account_id == Account.id)
                                      .where(Entry.transaction_id == row.id)).all()
        label = ", ".join(_label(a) for a in accounts) or None
        problem = (f"has {row.n} entries summing to {row.total}" if row.total != 0 or row.n == 0
                   else f"records amount {row.amount} but its entries move {row.moved}")
        breaches.append(Breach(1, label, f"transaction {row.id} {problem}"))
    return breaches


def _balances_match_entries() -> list[Breach]:
    sums = (select(Entry.account_id, func.sum(Entry.amount).label("total"), func.count().label("n"))
            .group_by(Entry.account_id).subquery())
    total = func.coalesce(sums.c.total, 0)
    count = func.coalesce(sums.c.n, 0)
    rows = db.session.execute(
        select(Account, total, count).outerjoin(sums, sums.c.account_id == Account.id)
        .where(or_(Account.balance != total, Account.entry_count != count))).all()
    return [Breach(2, _label(a), f"cached balance {a.balance} ({a.entry_count} entries) but entries sum to "
                   f"{t} ({n} entries)") for a, t, n in rows]


def _nothing_negative() -> list[Breach]:
    guarded = or_(Account.system_code.is_(None), Account.system_code == SystemAccount.ESCROW)
    rows = db.session.scalars(select(Account).where(Account.balance < 0, guarded)).all()
    return [Breach(3, _label(a), f"balance is {a.balance}") for a in rows]


def _entries_untouched() -> list[Breach]:
    """Entries are append-only: each account's seq runs 1, 2, 3 … and each balance_after is the running sum,
    so an entry edited, inserted or deleted by hand breaks the chain where it happened."""
    window = {"partition_by": Entry.account_id, "order_by": Entry.seq}
    chain = select(
        Entry.id, Entry.account_id, Entry.seq, Entry.balance_after,
        func.row_number().over(**window).label("position"),
        func.sum(Entry.amount).over(**window).label("running"),
    ).subquery()
    rows = db.session.execute(
        select(chain, Account).join(Account, Account.id == chain.c.account_id)
        .where(or_(chain.c.position != chain.c.seq, chain.c.running != chain.c.balance_after))
        .order_by(chain.c.account_id, chain.c.seq)).all()
    breaches, seen = [], set()
    for row in rows:
        if row.account_id in seen:
            continue
        seen.add(row.account_id)
        problem = ("a gap in the entry sequence" if row.position != row.seq
                   else f"balance_after {row.balance_after} differs from the running sum {row.running}")
        breaches.append(Breach(6, _label(row.Account), f"entry {row.id} (seq {row.seq}): {problem}"))
    return breaches


CHECKS = [_transactions_balance, _balances_match_entries, _nothing_negative, _entries_untouched]


def verify_ledger() -> list[Breach]:
    """Every breach of the ledger's invariants; an empty list means the ledger is sound. Features that keep
    coin-related state (hours, vouchers) add their checks to app.extensions["ledger_checks"]."""
    breaches: list[Breach] = []
    for check in [*CHECKS, *current_app.extensions.get("ledger_checks", [])]:
        breaches.extend(check())
    return breaches
