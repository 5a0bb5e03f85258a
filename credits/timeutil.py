"""Times are stored in UTC and shown in the town's time zone (Asia/Shanghai by default)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError, fields
from sqlalchemy import DateTime, TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


def hours_number(minutes: int, *, up: bool = False) -> str:
    """Minutes as hours to at most one decimal, in steps of 6 minutes: the one rounding rule for hours people read.
    Service done rounds down, so no page, certificate or memo states more than was served (满 2.2 小时 for 135
    minutes); what is still to go rounds up (`up`), so a total and what is left add up to at least the target.
    Sums and differences are worked out in minutes and rounded here once."""
    tenths = (minutes + (5 if up else 0)) // 6
    return str(tenths // 10) if tenths % 10 == 0 else f"{tenths // 10}.{tenths % 10}"


def duration(minutes: int, up: bool = False) -> str:
    """A length of service as people read it (the `duration` template filter): under an hour in minutes, otherwise
    in hours to one decimal (rounded as hours_number says)."""
    if minutes < 60:
        return gettext("%(n)s 分钟", n=minutes)
    return gettext("%(n)s 小时", n=hours_number(minutes, up=up))


def local_zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["CREDITS_TIMEZONE"])


def local_day_range(first: date, last: date) -> tuple[datetime, datetime]:
    """[first 00:00, the day after last 00:00) in the town's time zone."""
    zone = local_zone()
    return (datetime.combine(first, time(), zone), datetime.combine(last + timedelta(days=1), time(), zone))


def local_today_range(now: datetime | None = None) -> tuple[datetime, datetime]:
    """Today, in the town's time zone, as [00:00, tomorrow 00:00)."""
    today = (now or utcnow()).astimezone(local_zone()).date()
    return local_day_range(today, today)


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


# The times the scheme can be about: 2000-01-01 to 2099-12-31 in any zone. Outside them the town's zone may have
# no whole-minute offset (before 1901 it is local mean time, +08:05:43, which RFC 3339 cannot write) and years
# near 1 and 9999 overflow on conversion.
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2099, 12, 31)
FIRST_TIME = datetime(1999, 12, 31, tzinfo=UTC)
END_TIME = datetime(2100, 1, 2, tzinfo=UTC)
OUT_OF_RANGE = _l("须在 %(a)s 到 %(b)s 之间。", a=FIRST_DAY, b=LAST_DAY)


class LocalDateTime(fields.DateTime):
    """ISO 8601 in and out: naive input is local time; output carries the local offset (+08:00)."""

    def _deserialize(self, value, attr, data, **kwargs):
        moment = as_aware(super()._deserialize(value, attr, data, **kwargs))
        if not FIRST_TIME <= moment < END_TIME:
            raise ValidationError(str(OUT_OF_RANGE))  # str: a lazy message would not be put in a list
        return moment

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else value.astimezone(local_zone()).isoformat()


class LocalDate(fields.Date):
    """A day of a period asked for, in the same years: the day after 9999-12-31 does not exist."""

    def _deserialize(self, value, attr, data, **kwargs):
        day = super()._deserialize(value, attr, data, **kwargs)
        if not FIRST_DAY <= day <= LAST_DAY:
            raise ValidationError(str(OUT_OF_RANGE))
        return day
