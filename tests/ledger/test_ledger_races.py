"""Real threads racing on a real database: transfers between a few accounts lose no update and overdraw
nothing, and one idempotency key posted twenty times at once makes one transaction."""

from __future__ import annotations

import functools
import random
import threading
import time

import pytest
from sqlalchemy import func, select

from credits.database import in_transaction
from credits.errors import InsufficientBalance
from credits.extensions import db
from credits.ledger.models import Account, SystemAccount, Transaction, TxKind
from credits.ledger.services import system_account, transfer, user_account
from credits.ledger.verify import verify_ledger

pytestmark = pytest.mark.slow

THREADS = 16
SECONDS = 3.0
ACCOUNTS = 5
OPENING_BALANCE = 100




def run_threads(count: int, target) -> list[BaseException]:
    """Run `target(index)` in `count` threads; return what they raised."""
    errors: list[BaseException] = []

    def guarded(index: int) -> None:
        try:
            target(index)
        except BaseException as exc:  # reported to the test, which fails on any
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread is stuck"
    return errors


def balances(ids: list[int]) -> dict[int, int]:
    return dict(db.session.execute(select(Account.id, Account.balance).where(Account.id.in_(ids))).all())


def test_concurrent_transfers_lose_no_update_and_overdraw_no_account(app, make_user, retries):
    issuance = system_account(SystemAccount.ISSUANCE)
    accounts = [user_account(make_user().id) for _ in range(ACCOUNTS)]
    for account in accounts:
        transfer(TxKind.ISSUE, issuance, account, OPENING_BALANCE)
    ids = [a.id for a in accounts]
    db.session.commit()  # and read nothing more here: on SQLite a read would take the write lock again
    start = threading.Barrier(THREADS)
    outcomes: list[tuple[int, int]] = []

    def mover(index: int) -> None:
        rng = random.Random(index)
        posted = refused = 0
        with app.app_context():
            mine = [db.session.get(Account, i) for i in ids]
            db.session.rollback()  # hold no lock while waiting for the others
            start.wait(timeout=30)
            deadline = time.monotonic() + SECONDS
            while time.monotonic() < deadline:
                source, target = rng.sample(mine, 2)
                amount = rng.randint(1, 40)  # often more than the source holds after a few moves
                try:
                    in_transaction(functools.partial(transfer, TxKind.ADJUST, source, target, amount))
                    posted += 1
                except InsufficientBalance:
                    refused += 1
        outcomes.append((posted, refused))

    began = time.monotonic()
    errors = run_threads(THREADS, mover)
    elapsed = time.monotonic() - began

    assert errors == []
    posted = sum(p for p, _ in outcomes)
    refused = sum(r for _, r in outcomes)
    db.session.rollback()
    final = balances(ids)
    assert all(balance >= 0 for balance in final.values()), final
    assert sum(final.values()) == ACCOUNTS * OPENING_BALANCE
    committed = db.session.scalar(select(func.count()).select_from(Transaction)
                                  .where(Transaction.kind == TxKind.ADJUST))
    assert committed == posted
    assert verify_ledger() == []
    assert posted > THREADS, f"only {posted} transfers in {elapsed:.1f}s: the threads did not race"
    print(f"\n{db.engine.dialect.name}: {THREADS} threads, {posted} transfers committed, {refused} refused, "
          f"{retries.count} retries in {elapsed:.1f}s ({posted / elapsed:.0f} transactions/s)")


def test_twenty_concurrent_posts_with_one_idempotency_key_make_exactly_one_transaction(app, make_user):
    issuance_id = system_account(SystemAccount.ISSUANCE).id
    volunteer_id = user_account(make_user().id).id
    db.session.commit()
    start = threading.Barrier(20)
    returned: list[int] = []

    def poster(_index: int) -> None:
        with app.app_context():
            source, target = db.session.get(Account, issuance_id), db.session.get(Account, volunteer_id)
            db.session.rollback()
            start.wait(timeout=30)
            tx_id = in_transaction(lambda: transfer(TxKind.ISSUE, source, target, 10, ref=("service_record", 77),
                                                    idempotency_key="approve-77").id)
            returned.append(tx_id)

    errors = run_threads(20, poster)

    assert errors == []
    assert len(returned) == 20
    assert len(set(returned)) == 1
    db.session.rollback()
    stored = db.session.scalars(select(Transaction.id).where(Transaction.idempotency_key == "approve-77")).all()
    assert stored == [returned[0]]
    assert db.session.scalar(select(func.count()).select_from(Transaction)) == 1
    assert balances([volunteer_id]) == {volunteer_id: 10}
    assert verify_ledger() == []
