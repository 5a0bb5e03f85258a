"""Inbox rows, SMS deliveries and per-kind SMS opt-in."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from credits.auth.models import User
from credits.extensions import db, sql_list
from credits.timeutil import UTCDateTime, utcnow


class DeliveryStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class Notification(db.Model):
    """One message in a person's inbox. Its title and body are rendered when read, in the reader's language, from
    the kind's template and `params`."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_unread", "user_id", "read_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    link: Mapped[str | None] = mapped_column(String(255))
    # The event's own key (a reminder for one claim, say): a second notify() for the same event adds nothing.
    key: Mapped[str | None] = mapped_column(String(120), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class Delivery(db.Model):
    """One SMS to send. Either it renders its notification at send time, or it carries its own `text` (a
    verification code), which is cleared once the attempt is over so that no code outlives its use."""

    __tablename__ = "deliveries"
    __table_args__ = (
        CheckConstraint(f"status IN ({sql_list(DeliveryStatus)})", name="status"),
        CheckConstraint("channel IN ('sms')", name="channel"),
        CheckConstraint("attempts >= 0", name="attempts"),
        CheckConstraint("status IN ('sent', 'failed') OR text IS NOT NULL OR notification_id IS NOT NULL",
                        name="has_content"),
        Index("ix_deliveries_status_not_before", "status", "not_before"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(10), default="sms")
    to: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(40))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    notification_id: Mapped[int | None] = mapped_column(ForeignKey("notifications.id", ondelete="CASCADE"),
                                                        index=True)
    text: Mapped[str | None] = mapped_column(Text)
    # What makes a send idempotent: a channel that already accepted this key does not send it again.
    key: Mapped[str] = mapped_column(String(120), unique=True)
    status: Mapped[str] = mapped_column(String(10), default=DeliveryStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    notification: Mapped[Notification | None] = relationship()


class SmsSetting(db.Model):
    """A person's choice for one kind; without a row the kind's default holds (kinds.py)."""

    __tablename__ = "sms_settings"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    sms: Mapped[bool] = mapped_column(Boolean)
