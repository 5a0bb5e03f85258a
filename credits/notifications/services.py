"""notify() and send_text(): what features call, in their own transaction (flush, never commit); the inbox and
SMS settings a person manages."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlalchemy import func, select, update

from credits.auth.audit import record_event
from credits.auth.models import User
from credits.errors import InvalidState, NotFound
from credits.extensions import db
from credits.notifications.dispatch import schedule_after_commit
from credits.notifications.kinds import KINDS, render, to_params
from credits.notifications.models import Delivery, DeliveryStatus, Notification, SmsSetting
from credits.timeutil import local_zone, utcnow

QUIET_START, QUIET_END = time(22), time(8)


def quiet_until(now: datetime) -> datetime | None:
    """The end of the quiet hours (22:00–08:00 local) `now` falls in, or None outside them."""
    local = now.astimezone(local_zone())
    if QUIET_END <= local.time() < QUIET_START:
        return None
    day = local.date() if local.time() < QUIET_END else local.date() + timedelta(days=1)
    return datetime.combine(day, QUIET_END, local_zone())


def _sms_choices(user_ids: list[int], kind: str) -> dict[int, bool]:
    """Each person's SMS choice for the kind: their own, else the kind's default."""
    default = KINDS[kind].sms
    chosen = {row.user_id: row.sms for row in db.session.scalars(
        select(SmsSetting).where(SmsSetting.kind == kind, SmsSetting.user_id.in_(user_ids)))} if user_ids else {}
    return {user_id: chosen.get(user_id, default) for user_id in user_ids}


def notify(user: User, kind: str, *, link: str | None = None, key: str | None = None, **ctx) -> Notification | None:
    """Put a message in the user's inbox and, when they want this kind by SMS, queue the SMS (sent after commit).

    `ctx` is the template context of the kind (kinds.py): plain values and datetimes. `key` names the event for
    callers that may run again (reminders): a second notify() with the same key adds nothing and returns None.
    Quiet hours hold the SMS until 08:00, except for a kind with `urgent_within` whose `starts_at` is that close."""
    if key is not None and db.session.scalar(select(Notification.id).where(Notification.key == key)) is not None:
        return None
    notes = notify_many([user], kind, link=link, key=key, **ctx)
    return notes[0]


def notify_many(users: list[User], kind: str, *, link: str | None = None, key: str | None = None,
                **ctx) -> list[Notification]:
    """notify() for many people and one event (a cancelled project's claimants), in a few statements. With `key`,
    only one user may be given: the key is the message's."""
    if kind not in KINDS:
        raise ValueError(f"unknown message kind {kind!r}")
    if key is not None and len(users) != 1:
        raise ValueError("a key names one message")
    if not users:
        return []
    params = to_params(ctx)
    notes = [Notification(user_id=user.id, kind=kind, params=params, link=link, key=key) for user in users]
    db.session.add_all(notes)
    db.session.flush()
    now = utcnow()
    hold = quiet_until(now)
    urgent, starts_at = KINDS[kind].urgent_within, ctx.get("starts_at")
    if hold and urgent and isinstance(starts_at, datetime) and starts_at - now < urgent:
        hold = None
    wanted = _sms_choices([user.id for user in users], kind)
    deliveries = [Delivery(to=user.phone, kind=kind, user_id=user.id, notification_id=note.id,
                           key=f"notification:{note.id}", not_before=hold or now)
                  for user, note in zip(users, notes, strict=True) if user.is_active_user and wanted[user.id]]
    _queue(*deliveries)
    return notes


def send_text(phone: str, *, kind: str, text: str, key: str, user: User | None = None) -> Delivery:
    """Queue one SMS with a ready text and no inbox row (verification codes). The text is cleared once the attempt
    is over, sent or failed. Quiet hours do not apply: the person is waiting for it. `key` must be unique."""
    return send_texts([(phone, text, key, user)], kind=kind)[0]


def send_texts(messages: list[tuple[str, str, str, User | None]], *, kind: str) -> list[Delivery]:
    """send_text() for many (phone, text, key, user) at once, in one flush: a roster import's invitations."""
    now = utcnow()
    deliveries = [Delivery(to=phone, kind=kind, text=text, key=key, user_id=user.id if user else None,
                           not_before=now) for phone, text, key, user in messages]
    _queue(*deliveries)
    return deliveries


def _queue(*deliveries: Delivery) -> None:
    if not deliveries:
        return
    db.session.add_all(deliveries)
    db.session.flush()
    for delivery in deliveries:
        schedule_after_commit(delivery.id)


def title_and_body(note: Notification, locale: str | None) -> tuple[str, str]:
    return render(note.kind, note.params or {}, locale)


def notifications_of(user: User, *, unread: bool = False):
    """The user's messages, newest first, as a select() for pagination."""
    query = select(Notification).where(Notification.user_id == user.id)
    if unread:
        query = query.where(Notification.read_at.is_(None))
    return query.order_by(Notification.id.desc())


def unread_count(user: User) -> int:
    return db.session.scalar(select(func.count()).select_from(Notification)
                             .where(Notification.user_id == user.id, Notification.read_at.is_(None)))


def mark_read(*, user: User, ids: list[int] | None = None) -> int:
    """Mark the user's messages read: these ids, or all. Another person's ids are not found. Raises NotFound."""
    query = update(Notification).where(Notification.user_id == user.id, Notification.read_at.is_(None))
    if ids is not None:
        owned = set(db.session.scalars(select(Notification.id).where(Notification.user_id == user.id,
                                                                      Notification.id.in_(ids))))
        if owned != set(ids):
            raise NotFound()
        query = query.where(Notification.id.in_(ids))
    return db.session.execute(query.values(read_at=utcnow()).execution_options(synchronize_session=False)).rowcount


def sms_settings(user: User) -> dict[str, bool]:
    chosen = {row.kind: row.sms
              for row in db.session.scalars(select(SmsSetting).where(SmsSetting.user_id == user.id))}
    return {kind: chosen.get(kind, spec.sms) for kind, spec in KINDS.items()}


def update_sms_settings(changes: dict[str, bool], *, user: User) -> dict[str, bool]:
    """Set the person's SMS choice per kind (kinds not named keep theirs). Unknown kinds are the schema's to refuse."""
    for kind, wanted in changes.items():
        row = db.session.get(SmsSetting, (user.id, kind))
        if row is None:
            db.session.add(SmsSetting(user_id=user.id, kind=kind, sms=wanted))
        else:
            row.sms = wanted
    db.session.flush()
    record_event("notifications.sms_settings", user, actor=user, details={"sms": changes})
    return sms_settings(user)



def deliveries(*, status: str | None = None):
    """SMS deliveries for the admin, newest first: failed ones by default are what needs a look."""
    query = select(Delivery).order_by(Delivery.id.desc())
    return query.where(Delivery.status == status) if status else query


def delivery_counts() -> dict[str, int]:
    counts = dict(db.session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all())
    return {status.value: counts.get(status.value, 0) for status in DeliveryStatus}


def retry_delivery(delivery_id: int, *, actor: User) -> Delivery:
    """Queue a failed delivery again, with a fresh set of attempts (sent after commit). A ready text is gone once
    it failed (a code is never kept): such a delivery cannot be retried. Raises NotFound, InvalidState."""
    delivery = db.session.get(Delivery, delivery_id)
    if delivery is None:
        raise NotFound()
    if delivery.status != DeliveryStatus.FAILED or delivery.notification_id is None:
        raise InvalidState()
    delivery.status, delivery.attempts, delivery.not_before = DeliveryStatus.QUEUED, 0, utcnow()
    db.session.flush()
    schedule_after_commit(delivery.id)
    record_event("notifications.retry", delivery, actor=actor, details={"key": delivery.key})
    return delivery
