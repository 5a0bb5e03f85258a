"""The 公示 figures (SPEC 2.9): what the scheme has done this year and since it began, read from the ledger and the
service records, and the published year-end review results. Nothing here names a volunteer."""

from __future__ import annotations

import logging
import threading
import time
from datetime import date, datetime
from typing import Any

from flask import current_app
from sqlalchemy import distinct, func, or_, select

from credits.auth.models import Role, User, UserRole
from credits.extensions import db
from credits.hours.models import RecordStatus, ServiceRecord
from credits.ledger.models import Account, AccountKind, SystemAccount, Transaction, TxKind
from credits.merchants.models import Merchant, Voucher, VoucherStatus
from credits.projects.models import Project
from credits.reports.services import HELD, Period, _adjustments, _coins_by_bucket
from credits.reviews.models import Review, ReviewStatus
from credits.reviews.services import ranking
from credits.timeutil import local_zone, utcnow

log = logging.getLogger(__name__)

# The summary is the same for everyone, so each process keeps it this long (SPEC 2.9: cached a minute).
CACHE_SECONDS = 60
# Published review results shown: the latest closed reviews, their best few projects.
REVIEWS_SHOWN = 3
WINNERS_SHOWN = 10

COIN_KINDS = {TxKind.ISSUE: "issued", TxKind.CLAWBACK: "clawed_back", TxKind.REDEEM: "redeemed",
              TxKind.EXPIRE: "expired", TxKind.ADJUST: "adjusted"}


def _totals(period: Period, start: datetime | None, end: datetime) -> dict[str, Any]:
    """The figures of [start, end): all time when start is None. The coins are summed by `period`'s days, from
    the daily sums (ledger_days) for the days rolled up and from the ledger for the rest."""

    def since(column):
        return [column < end] if start is None else [column >= start, column < end]

    if start is None:
        # All time is what each volunteer's approved minutes already sum (kept with every approval and revocation,
        # beside the per-project sums verify-ledger checks against the records): 100,000 rows, not a million.
        served, minutes = db.session.execute(
            select(func.count(User.id).filter(User.approved_minutes > 0),
                   func.coalesce(func.sum(User.approved_minutes), 0))).one()
    else:
        served, minutes = db.session.execute(
            select(func.count(distinct(ServiceRecord.volunteer_id)), func.coalesce(func.sum(ServiceRecord.minutes), 0))
            .where(ServiceRecord.status == RecordStatus.APPROVED, *since(ServiceRecord.started_at))).one()
    registered = db.session.scalar(
        select(func.count()).select_from(User).join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role == Role.VOLUNTEER, *since(User.created_at)))
    coins = dict.fromkeys(COIN_KINDS.values(), 0)
    for _, kind, amount in _coins_by_bucket(period, [k.value for k in COIN_KINDS if k != TxKind.ADJUST]):
        coins[COIN_KINDS[TxKind(kind)]] += amount
    # An adjustment's amount does not say its direction: its net toward volunteers is what counts.
    coins["adjusted"] = int(db.session.scalar(select(_adjustments(start, end))))
    projects_done = db.session.scalar(
        select(func.count()).select_from(Project)
        .where(Project.status.in_(HELD), Project.ends_at <= utcnow(), *since(Project.starts_at)))
    services_given, coins_spent = db.session.execute(
        select(func.count(), func.coalesce(func.sum(Voucher.coins), 0))
        .where(Voucher.status == VoucherStatus.REDEEMED, *since(Voucher.redeemed_at))).one()
    return {"volunteers": {"served": int(served), "registered": int(registered)},
            "hours": {"approved_minutes": int(minutes)},
            "coins": coins,
            "projects_done": int(projects_done),
            "services_given": int(services_given), "coins_spent_at_merchants": int(coins_spent)}


def outstanding() -> int:
    """Coins volunteers hold now: their balances and what is held in escrow for their vouchers."""
    return int(db.session.scalar(select(func.coalesce(func.sum(Account.balance), 0)).where(
        or_(Account.kind == AccountKind.VOLUNTEER, Account.system_code == SystemAccount.ESCROW))))


def _merchants(start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Each active merchant with the services it gave this year and in all: merchants are named (SPEC 2.9)."""
    this_year = func.count(Voucher.id).filter(Voucher.redeemed_at >= start, Voucher.redeemed_at < end)
    rows = db.session.execute(
        select(Merchant.id, Merchant.name, this_year, func.count(Voucher.id))
        .outerjoin(Voucher, (Voucher.merchant_id == Merchant.id) & (Voucher.status == VoucherStatus.REDEEMED))
        .where(Merchant.active.is_(True)).group_by(Merchant.id, Merchant.name)
        .order_by(func.count(Voucher.id).desc(), Merchant.id)).all()
    return [{"id": mid, "name": name, "services_this_year": int(year), "services_all_time": int(total)}
            for mid, name, year, total in rows]


def _reviews() -> list[dict[str, Any]]:
    """The latest closed reviews' rankings: projects and their organisations, never the reviewers or scorers."""
    shown = []
    for review in db.session.scalars(select(Review).where(Review.status == ReviewStatus.CLOSED)
                                     .order_by(Review.year.desc(), Review.id.desc()).limit(REVIEWS_SHOWN)):
        rows = ranking(review)[:WINNERS_SHOWN]
        shown.append({"id": review.id, "year": review.year, "title": review.title,
                      "ranking": [{"rank": row.rank, "project_id": row.project.id, "title": row.project.title,
                                   "organization": row.project.organization.name,
                                   "mean_score": row.mean_score,
                                   "approved_minutes": int(row.figures.approved_minutes)}
                                  for row in rows if row.mean_score is not None]})
    return shown


def public_summary(today: date | None = None) -> dict[str, Any]:
    """Every figure of the 公示 page, computed now."""
    now = utcnow()
    today = today or now.astimezone(local_zone()).date()
    year = Period.named("year", today)
    start, end = year.bounds
    labels = [label for label, _, _ in year.buckets()]
    series = {"labels": labels, "issued": [0] * len(labels), "redeemed": [0] * len(labels)}
    slot = {label: i for i, label in enumerate(labels)}
    for label, kind, amount in _coins_by_bucket(year, [TxKind.ISSUE.value, TxKind.REDEEM.value]):
        series["issued" if kind == TxKind.ISSUE else "redeemed"][slot[label]] += amount
    first = db.session.scalar(select(func.min(Transaction.created_at)))
    ever = Period(min(first.astimezone(local_zone()).date(), today) if first else today, today)
    return {"year": today.year, "generated_at": now,
            "this_year": _totals(year, start, min(end, now)), "all_time": _totals(ever, None, now),
            "coins_outstanding": outstanding(), "merchants": _merchants(start, end),
            "reviews": _reviews(), "series": series}


class _Cached:
    """The summary kept per process (one per app, in app.extensions): the page is public and its figures change
    slowly. Fresh for CACHE_SECONDS; after that the kept figures are still served while one background thread
    computes new ones, so only a process's very first request waits for the computation (about a second at
    district scale)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: dict[str, Any] | None = None
        self._at = 0.0
        self.refreshing: threading.Thread | None = None

    def get(self) -> dict[str, Any]:
        with self._lock:
            value = self._value
            if value is not None:
                stale = time.monotonic() - self._at >= CACHE_SECONDS
                if stale and (self.refreshing is None or not self.refreshing.is_alive()):
                    self.refreshing = threading.Thread(target=self._refresh, name="public-summary",
                                                       args=(current_app._get_current_object(),), daemon=True)
                    self.refreshing.start()
                return value
        value = public_summary()
        self._store(value)
        return value

    def _refresh(self, app) -> None:
        with app.app_context():
            try:
                self._store(public_summary())
            except Exception:  # noqa: BLE001  (the kept figures stay; the next stale request tries again)
                log.exception("public summary: refresh failed")
            finally:
                db.session.remove()

    def _store(self, value: dict[str, Any]) -> None:
        with self._lock:
            self._value, self._at = value, time.monotonic()

    def clear(self) -> None:
        with self._lock:
            self._value, self.refreshing = None, None


def summary_cache() -> _Cached:
    """This app's cache: two apps in one process (the tests) never share figures."""
    return current_app.extensions.setdefault("public_summary", _Cached())


def cached_summary() -> dict[str, Any]:
    return summary_cache().get()
