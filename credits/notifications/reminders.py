"""`flask credits remind` (SPEC 2.7): the 24 h and 2 h reminders before a confirmed claim's project starts, and the
"voucher or coins expiring within 3 days" messages — each exactly once however often, and however many at once,
the command runs.

Once is the message key's doing (notify(key=...), a unique column). The claims due are found without those whose
reminder exists (one query on the key's unique index), so a second run costs a query, not one per claim; each batch
reads its keys again under the lock before sending. Two runs at once take turns per batch: SQLite's writes are
serialised already (BEGIN IMMEDIATE), and on PostgreSQL each batch takes a transaction-level advisory lock before
it reads the keys, so the later run sees what the earlier one committed."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from sqlalchemy import String, cast, literal, select, text
from sqlalchemy.orm import joinedload

from credits.auth.models import User
from credits.database import in_transaction
from credits.extensions import db
from credits.ledger.models import Account
from credits.merchants.models import Voucher, VoucherStatus
from credits.notifications.models import Notification
from credits.notifications.services import notify
from credits.projects.models import Claim, ClaimStatus, Project, ProjectStatus
from credits.settings.services import get_policy
from credits.timeutil import local_zone, utcnow

BATCH = 500
# (the reminder's name in its key, how long before the start it is due)
REMINDERS = (("24h", timedelta(hours=24)), ("2h", timedelta(hours=2)))
EXPIRY_NOTICE = timedelta(days=3)
_LOCK_ID = zlib.crc32(b"credits remind")


def _serialise_with_other_runs() -> None:
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})


def _batches(ids: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), BATCH):
        yield ids[start:start + BATCH]


def _reminder_window(ahead: timedelta, now: datetime) -> tuple[datetime, datetime]:
    """Projects starting in (lower, now + ahead] get this reminder; a project starting within the next, shorter
    window gets only that one (a claim made 3 h before the start is reminded once, at 2 h)."""
    shorter = [a for _label, a in REMINDERS if a < ahead]
    return now + (max(shorter) if shorter else timedelta(0)), now + ahead


def send_reminders(now: datetime) -> dict[str, int]:
    counts = {}
    for label, ahead in REMINDERS:
        lower, upper = _reminder_window(ahead, now)
        key = literal(f"reminder:{label}:claim:") + cast(Claim.id, String)
        ids = list(db.session.scalars(
            select(Claim.id).join(Project, Project.id == Claim.project_id)
            .where(Claim.status == ClaimStatus.CONFIRMED,
                   Project.status.in_((ProjectStatus.PUBLISHED, ProjectStatus.CLOSED)),
                   Project.starts_at > lower, Project.starts_at <= upper,
                   ~select(Notification.id).where(Notification.key == key).exists())
            .order_by(Claim.id)))
        db.session.rollback()
        sent = 0
        for batch in _batches(ids):
            def load(batch=batch):
                return db.session.scalars(select(Claim).options(joinedload(Claim.project), joinedload(Claim.volunteer))
                                          .where(Claim.id.in_(batch), Claim.status == ClaimStatus.CONFIRMED)).all()

            def send(claim: Claim, key: str) -> object:
                project = claim.project
                return notify(claim.volunteer, "reminder", key=key, link=f"/projects/{project.id}",
                              title=project.title, starts_at=project.starts_at, location=project.location)

            sent += _send_batch_loaded(load, lambda claim, label=label: f"reminder:{label}:claim:{claim.id}", send)
        counts[f"reminders_{label}"] = sent
    return counts


def _send_batch_loaded(load: Callable[[], list], key_of: Callable, send: Callable) -> int:
    """As _send_batch, with the items loaded inside the batch's transaction (after its lock): a claim cancelled
    meanwhile is not reminded."""
    def unit() -> int:
        _serialise_with_other_runs()
        keys = {key_of(item): item for item in load()}
        taken = set(db.session.scalars(select(Notification.key).where(Notification.key.in_(keys))))
        return sum(1 for key, item in keys.items() if key not in taken and send(item, key) is not None)

    return in_transaction(unit)


def send_voucher_notices(now: datetime) -> int:
    ids = list(db.session.scalars(select(Voucher.id).where(
        Voucher.status == VoucherStatus.ISSUED, Voucher.expires_at > now, Voucher.expires_at <= now + EXPIRY_NOTICE)
        .order_by(Voucher.id)))
    db.session.rollback()
    sent = 0
    for batch in _batches(ids):
        def load(batch=batch):
            return db.session.scalars(select(Voucher).options(joinedload(Voucher.service), joinedload(Voucher.merchant))
                                      .where(Voucher.id.in_(batch), Voucher.status == VoucherStatus.ISSUED)).all()

        def send(voucher: Voucher, key: str) -> object:
            return notify(db.session.get(User, voucher.volunteer_id), "voucher_expiring", key=key,
                          link=f"/me/vouchers/{voucher.id}", merchant=voucher.merchant.name,
                          service=voucher.service.name, expires_at=voucher.expires_at)

        sent += _send_batch_loaded(load, lambda voucher: f"voucher_expiring:voucher:{voucher.id}", send)
    return sent


def send_coin_notices(now: datetime) -> int:
    """Under coin_expiry = end_of_next_year, coins credited before 1 January of this year expire at the coming
    New Year (local time): within 3 days of it, each volunteer with such coins is told how many, once."""
    if get_policy()["coin_expiry"] != "end_of_next_year":
        return 0
    local = now.astimezone(local_zone())
    expires_at = datetime(local.year + 1, 1, 1, tzinfo=local_zone())
    if expires_at - now > EXPIRY_NOTICE:
        return 0
    from credits.hours.services import _expirable  # the query `flask credits expire` uses, so the figures agree

    cutoff = datetime(local.year, 1, 1, tzinfo=local_zone())
    rows = [(row.id, int(row.expirable)) for row in db.session.execute(_expirable(cutoff))]
    db.session.rollback()
    sent = 0
    for start in range(0, len(rows), BATCH):
        chunk = dict(rows[start:start + BATCH])

        def load(chunk=chunk):
            return db.session.scalars(select(Account).where(Account.id.in_(chunk))).all()

        def send(account: Account, key: str, chunk=chunk) -> object:
            return notify(db.session.get(User, account.user_id), "coins_expiring", key=key, link="/me/wallet",
                          coins=chunk[account.id], expires_at=expires_at)

        sent += _send_batch_loaded(load, lambda account: f"coins_expiring:account:{account.id}:{expires_at.year}",
                                   send)
    return sent


def remind(now: datetime | None = None) -> dict[str, int]:
    """Everything due now; a second run sends nothing more. Commits per batch."""
    now = now or utcnow()
    counts = send_reminders(now)
    counts["voucher_expiring"] = send_voucher_notices(now)
    counts["coins_expiring"] = send_coin_notices(now)
    return counts
