"""Sending one delivery, at least once and at most once per channel key; retries with backoff; the sweep."""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select, update

from credits.auth.models import User
from credits.extensions import db
from credits.notifications.channels import Channel, current_channel
from credits.notifications.kinds import render
from credits.notifications.models import Delivery, DeliveryStatus, Notification
from credits.timeutil import utcnow

log = logging.getLogger(__name__)


def backoff(attempts: int) -> timedelta:
    """How long a failed delivery waits before its next try: 30 s, 1, 2, 4 … minutes, at most an hour."""
    return timedelta(seconds=min(3600, 30 * 2 ** (attempts - 1)))


def _claim(delivery_id: int) -> tuple[Delivery, str] | None:
    """Take the delivery for this worker (queued and due → sending) and render its text, in one short
    transaction; None when another worker has it, it is done, or it is not due."""
    now = utcnow()
    taken = db.session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.status == DeliveryStatus.QUEUED, Delivery.not_before <= now)
        .values(status=DeliveryStatus.SENDING, attempts=Delivery.attempts + 1, claimed_at=now)
        .execution_options(synchronize_session=False)).rowcount
    if not taken:
        db.session.rollback()
        return None
    delivery = db.session.get(Delivery, delivery_id, populate_existing=True)
    text = delivery.text
    if text is None:
        note = db.session.get(Notification, delivery.notification_id)
        locale = db.session.scalar(select(User.locale).where(User.id == note.user_id))
        text = render(note.kind, note.params or {}, locale)[1]  # the body: the title adds nothing to an SMS
    db.session.commit()  # the channel is called outside any transaction: SQLite's write lock is not held over it
    return delivery, text


def deliver(delivery_id: int, channel: Channel | None = None) -> str:
    """Send one delivery if it is queued and due. Returns what happened: skipped, sent, retry or failed."""
    claimed = _claim(delivery_id)
    if claimed is None:
        return "skipped"
    delivery, text = claimed
    try:
        (channel or current_channel()).send(key=delivery.key, to=delivery.to, kind=delivery.kind, text=text)
    except Exception as exc:
        return _failed(delivery, exc)
    db.session.execute(update(Delivery).where(Delivery.id == delivery.id, Delivery.status == DeliveryStatus.SENDING)
                       .values(status=DeliveryStatus.SENT, sent_at=utcnow(), text=None, last_error=None)
                       .execution_options(synchronize_session=False))
    db.session.commit()
    return "sent"


def _failed(delivery: Delivery, exc: Exception) -> str:
    error = f"{type(exc).__name__}: {exc}"[:500]
    final = delivery.attempts >= current_app.config["SMS_MAX_ATTEMPTS"]
    log.warning("delivery %r attempt %r failed%s: %s", delivery.id, delivery.attempts,
                " for good" if final else "", error)
    values = ({"status": DeliveryStatus.FAILED, "text": None} if final else
              {"status": DeliveryStatus.QUEUED, "not_before": utcnow() + backoff(delivery.attempts)})
    db.session.execute(update(Delivery).where(Delivery.id == delivery.id, Delivery.status == DeliveryStatus.SENDING)
                       .values(last_error=error, **values).execution_options(synchronize_session=False))
    db.session.commit()
    return "failed" if final else "retry"


def sweep(*, now=None) -> list[int]:
    """What a crash or a lost job left behind: deliveries `sending` for longer than SMS_SENDING_TIMEOUT go back
    to `queued`; queued ones that are due and were not handed on within SMS_REQUEUE_AFTER are returned (and
    stamped), to be enqueued or delivered again. Commits."""
    now = now or utcnow()
    config = current_app.config
    db.session.execute(update(Delivery)
                       .where(Delivery.status == DeliveryStatus.SENDING,
                              Delivery.claimed_at < now - timedelta(seconds=config["SMS_SENDING_TIMEOUT"]))
                       .values(status=DeliveryStatus.QUEUED, enqueued_at=None)
                       .execution_options(synchronize_session=False))
    stale = now - timedelta(seconds=config["SMS_REQUEUE_AFTER"])
    due = list(db.session.scalars(
        select(Delivery.id)
        .where(Delivery.status == DeliveryStatus.QUEUED, Delivery.not_before <= now,
               func.coalesce(Delivery.enqueued_at, Delivery.created_at) < stale)
        .order_by(Delivery.id).limit(config["SMS_SWEEP_BATCH"])))
    if due:
        db.session.execute(update(Delivery).where(Delivery.id.in_(due)).values(enqueued_at=now)
                           .execution_options(synchronize_session=False))
    db.session.commit()
    return due
