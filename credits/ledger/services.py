"""Posting balanced transactions: guarded balance updates in account order, idempotent replays."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value

from credits.errors import IdempotencyConflict, InsufficientBalance, InvalidInput
from credits.extensions import db
from credits.ledger import memos
from credits.ledger.models import Account, AccountKind, Entry, SystemAccount, Transaction, TxKind
from credits.observability import COINS, count_on_commit

# The largest amount one transaction may move and any balance may hold. Far below the 64-bit columns' 9.2e18, so
# no sum of balances a report adds can overflow either; an amount beyond it is refused as bad input, not a 500.
MAX_COINS = 10**15
# What a volunteer account may receive while it owes coins; each such credit pays the debt first (SPEC 2.3).
DEBT_PAYING_KINDS = frozenset({TxKind.ISSUE.value, TxKind.RELEASE.value, TxKind.ADJUST.value})
DEBT_REF = "debt"  # the ref_type of a debt payment; its ref_id is the transaction that brought the coins


class AmountOutOfRange(InvalidInput):
    """An amount or a resulting balance past MAX_COINS (SPEC 3.2: a clear 422, never an overflow)."""

    message = _l("公益币数额超出允许范围。")


@dataclass(frozen=True)
class Move:
    """`amount` coins from `source` to `target`."""

    source: Account
    target: Account
    amount: int


def _get_or_create(kind: str, **owner: Any) -> Account:
    stmt = select(Account).filter_by(**owner)
    account = db.session.scalars(stmt).one_or_none()
    if account is not None:
        return account
    try:
        with db.session.begin_nested():
            account = Account(kind=kind, **owner)
            db.session.add(account)
    except IntegrityError:  # created by a concurrent transaction since our select
        account = db.session.scalars(stmt).one()
    return account


def system_account(code: SystemAccount) -> Account:
    return _get_or_create(AccountKind.SYSTEM, system_code=SystemAccount(code).value)


def user_account(user_id: int) -> Account:
    return _get_or_create(AccountKind.VOLUNTEER, user_id=user_id)


def merchant_account(merchant_id: int) -> Account:
    return _get_or_create(AccountKind.MERCHANT, merchant_id=merchant_id)


def locked_balance(account: Account) -> int:
    """The account's balance read under a row lock (FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE
    already holds the write lock), for callers that must decide an amount from it."""
    stmt = select(Account.balance).where(Account.id == account.id).with_for_update()
    balance = db.session.scalar(stmt)
    set_committed_value(account, "balance", balance)
    return balance


def _net(moves: Sequence[Move]) -> dict[int, tuple[Account, int]]:
    if not moves:
        raise ValueError("a transaction needs at least one move")
    net: dict[int, tuple[Account, int]] = {}
    for move in moves:
        if type(move.amount) is not int or move.amount <= 0:
            raise ValueError(f"move amount must be a positive integer, got {move.amount!r}")
        if move.amount > MAX_COINS:
            raise AmountOutOfRange()
        if move.source.id == move.target.id:
            raise ValueError("a move needs two different accounts")
        for account, amount in ((move.source, -move.amount), (move.target, move.amount)):
            held = net.get(account.id, (account, 0))[1]
            net[account.id] = (account, held + amount)
    net = {k: v for k, v in net.items() if v[1] != 0}
    if not net:
        raise ValueError("the moves cancel out")
    return net


def _fingerprint(kind: str, net: dict[int, tuple[Account, int]], ref: tuple[str, int] | None) -> str:
    body = json.dumps([kind, sorted((k, v[1]) for k, v in net.items()), list(ref) if ref else None])
    return hashlib.sha256(body.encode()).hexdigest()


def _replay(key: str, fingerprint: str) -> Transaction | None:
    existing = db.session.scalars(select(Transaction).where(Transaction.idempotency_key == key)).one_or_none()
    if existing is not None and existing.fingerprint != fingerprint:
        raise IdempotencyConflict()
    return existing


def post(kind: TxKind | str, moves: Sequence[Move], *, actor: Any = None, memo: str = "",
         ref: tuple[str, int] | None = None, idempotency_key: str | None = None) -> Transaction:
    """Post one balanced transaction and update the balances it touches, in this database transaction.

    A replay with the same idempotency key returns the first transaction; the same key with other content
    raises IdempotencyConflict. A move that would take an account other than `issuance` below zero raises
    InsufficientBalance and writes nothing; one past MAX_COINS raises AmountOutOfRange. Coins credited to a volunteer
    who owes a debt pay it first, in a second transaction posted here. Flushes, never commits.
    """
    kind = TxKind(kind).value
    net = _net(moves)
    fingerprint = _fingerprint(kind, net, ref)
    if idempotency_key is not None and (done := _replay(idempotency_key, fingerprint)) is not None:
        return done

    tx = Transaction(kind=kind, idempotency_key=idempotency_key, fingerprint=fingerprint,
                     amount=sum(amount for _, amount in net.values() if amount > 0),
                     actor_id=getattr(actor, "id", None), memo=memo,
                     ref_type=ref[0] if ref else None, ref_id=ref[1] if ref else None)
    try:
        with db.session.begin_nested():
            db.session.add(tx)
            db.session.flush()
            for account_id in sorted(net):  # a fixed lock order, so opposite transfers cannot deadlock
                account, amount = net[account_id]
                balance, seq = _apply(account, amount)
                db.session.add(Entry(transaction=tx, account_id=account_id, amount=amount,
                                     balance_after=balance, seq=seq))
            db.session.flush()
    except IntegrityError:
        _forget_balances(net)
        # Only the idempotency key can collide: a concurrent post with the same key committed first.
        if idempotency_key is None or (done := _replay(idempotency_key, fingerprint)) is None:
            raise
        return done
    except (InsufficientBalance, AmountOutOfRange):
        _forget_balances(net)
        raise
    count_on_commit(db.session, COINS, tx.amount, kind=kind)
    if kind in DEBT_PAYING_KINDS:
        for account, amount in net.values():
            if amount > 0 and account.kind == AccountKind.VOLUNTEER:
                _pay_debt(account, amount, tx, actor)
    return tx


def add_debt(account: Account, coins: int) -> None:
    """What a clawback could not take becomes the volunteer's debt (SPEC 2.3)."""
    db.session.execute(update(Account).where(Account.id == account.id).values(debt=Account.debt + coins)
                       .execution_options(synchronize_session=False))
    db.session.expire(account, ["debt"])


def _pay_debt(account: Account, received: int, tx: Transaction, actor: Any) -> None:
    """Pay the account's debt from coins just credited by `tx`, as far as they go: a clawback to issuance, keyed by
    `tx`, so a replay of `tx` (which returns before reaching here) or of this payment pays nothing twice. The
    account's row is locked already: `tx` updated its balance."""
    debt = db.session.scalar(select(Account.debt).where(Account.id == account.id))
    pay = min(debt, received)
    if pay <= 0:
        return
    db.session.execute(update(Account).where(Account.id == account.id, Account.debt >= pay)
                       .values(debt=Account.debt - pay).execution_options(synchronize_session=False))
    db.session.expire(account, ["debt"])
    transfer(TxKind.CLAWBACK, account, system_account(SystemAccount.ISSUANCE), pay, actor=actor,
             ref=(DEBT_REF, tx.id), memo=memos.write(memos.DEBT_PAID, coins=pay),
             idempotency_key=f"debt:{tx.id}:{account.id}")


def _forget_balances(net: dict[int, tuple[Account, int]]) -> None:
    """The rolled-back savepoint undid our UPDATEs but not the values `_apply` set on the objects."""
    for account, _ in net.values():
        if account in db.session:
            db.session.expire(account, ["balance", "entry_count"])


def _apply(account: Account, amount: int) -> tuple[int, int]:
    """Add `amount` to the balance with one guarded UPDATE; the row lock it takes lasts until commit."""
    stmt = (
        update(Account)
        .where(Account.id == account.id)
        .where(or_(Account.balance + amount >= 0, Account.system_code == SystemAccount.ISSUANCE.value))
        .where(Account.balance + amount <= MAX_COINS, Account.balance + amount >= -MAX_COINS)
        .values(balance=Account.balance + amount, entry_count=Account.entry_count + 1)
        .returning(Account.balance, Account.entry_count)
        .execution_options(synchronize_session=False)
    )
    row = db.session.execute(stmt).one_or_none()
    if row is None:
        if abs(db.session.scalar(select(Account.balance).where(Account.id == account.id)) + amount) > MAX_COINS:
            raise AmountOutOfRange()
        raise InsufficientBalance()
    set_committed_value(account, "balance", row.balance)
    set_committed_value(account, "entry_count", row.entry_count)
    return row.balance, row.entry_count


def transfer(kind: TxKind | str, source: Account, target: Account, amount: int, **kwargs: Any) -> Transaction:
    """A transaction of a single move; see `post`."""
    return post(kind, [Move(source, target, amount)], **kwargs)


def sums_by_kind(account: Account) -> dict[str, int]:
    """The net of an account's entries per transaction kind, in one aggregate query."""
    rows = db.session.execute(
        select(Transaction.kind, func.sum(Entry.amount)).join(Entry, Entry.transaction_id == Transaction.id)
        .where(Entry.account_id == account.id).group_by(Transaction.kind)).all()
    return {kind: int(total) for kind, total in rows}


def history(account: Account):
    """The ordered query of an account's entries with their transactions, newest first."""
    return (select(Entry.id, Transaction.kind, Entry.amount, Entry.balance_after, Transaction.created_at,
                   Transaction.memo)
            .join(Transaction, Transaction.id == Entry.transaction_id)
            .where(Entry.account_id == account.id).order_by(Entry.seq.desc()))


def find_user_account(user_id: int) -> Account | None:
    """The volunteer's account if it exists (a read, for pages that must not write)."""
    return db.session.scalars(select(Account).filter_by(user_id=user_id)).one_or_none()


def wallet_figures(account: Account | None) -> dict[str, int]:
    """balance, held (in escrow for outstanding holds), earned (issued net of clawbacks and adjustments),
    spent (holds whose reference was redeemed) and expired — all from the entries."""
    if account is None:
        return {"balance": 0, "held": 0, "earned": 0, "spent": 0, "expired": 0, "debt": 0}
    sums = sums_by_kind(account)
    redeemed = select(Transaction.id).where(Transaction.kind == TxKind.REDEEM,
                                            Transaction.ref_type == Hold.ref_type, Transaction.ref_id == Hold.ref_id)
    spent = -(db.session.scalar(
        select(func.coalesce(func.sum(Entry.amount), 0)).join(Hold, Hold.id == Entry.transaction_id)
        .where(Entry.account_id == account.id, Hold.kind == TxKind.HOLD, redeemed.exists())) or 0)
    held = -(sums.get(TxKind.HOLD, 0) + sums.get(TxKind.RELEASE, 0)) - spent
    return {"balance": account.balance, "held": held, "spent": spent, "expired": -sums.get(TxKind.EXPIRE, 0),
            "earned": sums.get(TxKind.ISSUE, 0) + sums.get(TxKind.CLAWBACK, 0) + sums.get(TxKind.ADJUST, 0),
            "debt": account.debt}


Hold = aliased(Transaction, name="hold")
