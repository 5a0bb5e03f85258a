"""Shared set-up for the service-hours tests: a project that has started, a confirmed claim, local-time slots in
its period, a controllable clock for check-in, and a way to post ledger transactions with an earlier date."""

from __future__ import annotations

import contextlib
from datetime import datetime, time, timedelta

from sqlalchemy import event, select

from credits.extensions import db
from credits.hours import services as hours
from credits.hours.models import ServiceRecord
from credits.ledger.models import Transaction
from credits.projects import services as projects
from credits.projects.models import Claim, Project
from credits.settings.models import PolicySetting
from credits.timeutil import local_zone, utcnow

PERIOD_DAYS = 40  # projects run from PERIOD_DAYS ago until tomorrow, so slots on past days fall inside


def allow_history(days: int) -> None:
    """This test's town lets projects start, and manual records be filed, up to `days` days back (the defaults are
    7 and 30 days, SPEC 2.3): most tests of hours need a longer past to record in than a real town allows."""
    for key in ("backdate_days", "manual_record_days"):
        db.session.merge(PolicySetting(key=key, value=days + 1))
    db.session.commit()


def started_project(coordinator, *, title: str = "健康加油站", days_ago: int = PERIOD_DAYS, capacity: int = 10,
                    block_minutes: int | None = None, coins_per_block: int | None = None, **extra) -> Project:
    """A published project that began `days_ago` days ago and ends tomorrow, open for claims."""
    if days_ago > 7:
        allow_history(days_ago)
    now = utcnow()
    data = {"title": title, "category": "健康", "location": "镇卫生院", "starts_at": now - timedelta(days=days_ago),
            "ends_at": now + timedelta(days=1), "capacity": capacity, "waitlist_capacity": capacity,
            "block_minutes": block_minutes, "coins_per_block": coins_per_block, **extra}
    project = projects.create_project(data, actor=coordinator)
    projects.publish(project, actor=coordinator, publish_at=now - timedelta(days=days_ago + 1))
    db.session.commit()
    return project


def confirmed_claim(project: Project, volunteer) -> Claim:
    claim = projects.claim(project, volunteer=volunteer)
    db.session.commit()
    assert claim.status == "confirmed"
    return claim


def local_day(days_ago: int):
    """The Asia/Shanghai calendar date `days_ago` days before today."""
    return (utcnow().astimezone(local_zone()) - timedelta(days=days_ago)).date()


def at(days_ago: int, hour: int, minute: int = 0) -> datetime:
    """An aware local time on the day `days_ago` days ago."""
    return datetime.combine(local_day(days_ago), time(hour, minute), local_zone())


def slot(days_ago: int, minutes: int, *, hour: int = 9) -> dict:
    """Manual-record input: `minutes` from `hour`:00 local on that day."""
    start = at(days_ago, hour)
    return {"started_at": start, "ended_at": start + timedelta(minutes=minutes), "note": ""}


def file(claim: Claim, volunteer, data: dict) -> ServiceRecord:
    record = hours.file_manual(claim, data, volunteer=volunteer)
    db.session.commit()
    return record


def approve(record: ServiceRecord, reviewer) -> int:
    coins = hours.approve(record, reviewer=reviewer)
    db.session.commit()
    return coins


def revoke(record: ServiceRecord, reviewer, reason: str = "核实有误") -> int:
    clawed = hours.revoke(record, reason, reviewer=reviewer)
    db.session.commit()
    return clawed


def record_count(**filters) -> int:
    return len(db.session.scalars(select(ServiceRecord.id).filter_by(**filters)).all())


class Clock:
    """A settable clock for the hours services (check-in codes, lapsing, 'now' checks)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> datetime:
        self.now = self.now + timedelta(**delta)
        return self.now

    def code(self, project: Project, windows_back: int = 0, *, shown_by=None) -> str:
        """The code a coordinator (the project's creator unless `shown_by`) shows at this time."""
        window = int(self.now.timestamp()) // hours.CODE_WINDOW
        return hours._code_for(project.id, window - windows_back, shown_by.id if shown_by else project.created_by_id)


@contextlib.contextmanager
def ledger_dated(when: datetime):
    """Ledger transactions posted inside the block carry `when` as their created_at. The ledger tables refuse
    UPDATE, so the date is set as the row is inserted, not changed afterwards."""

    def stamp(_mapper, _connection, target) -> None:
        target.created_at = when

    event.listen(Transaction, "before_insert", stamp)
    try:
        yield
    finally:
        event.remove(Transaction, "before_insert", stamp)
