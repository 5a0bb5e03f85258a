"""Times are stored in UTC and shown in the town's time zone (Asia/Shanghai by default)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from marshmallow import fields
from sqlalchemy import DateTime, TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


def local_zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["CREDITS_TIMEZONE"])


def local_day_range(first: date, last: date) -> tuple[datetime, datetime]:
    """[first 00:00, the day after last 00:00) in the town's time zone."""
    zone = local_zone()
    return (datetime.combine(first, time(), zone), datetime.combine(last + timedelta(days=1), time(), zone))


def as_aware(value: datetime) -> datetime:
    """Naive input means local (Asia/Shanghai) time, per the API contract."""
    return value.replace(tzinfo=local_zone()) if value.tzinfo is None else value


class UTCDateTime(TypeDecorator):
    """Stores aware datetimes as UTC and always hands back aware UTC, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class LocalDateTime(fields.DateTime):
    """ISO 8601 in and out: naive input is local time; output carries the local offset (+08:00)."""

    def _deserialize(self, value, attr, data, **kwargs):
        return as_aware(super()._deserialize(value, attr, data, **kwargs))

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else value.astimezone(local_zone()).isoformat()
