"""Service records (SPEC 2.2) and the cumulative coin rule (SPEC 2.3).

Every change to a volunteer's approved minutes on a project goes through `settle`, which compares what the
rule now owes with what has been issued net and posts the difference to the ledger in the same database
transaction, keyed by the event, so a replay issues nothing twice.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import case, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from credits.auth.audit import record_event
from credits.auth.models import Role, User, UserRole
from credits.auth.services import require_own_organization
from credits.database import lock
from credits.errors import DomainError, Forbidden, InvalidInput, InvalidState, NotFound
from credits.extensions import db
from credits.hours.models import (
    HOLDING_TIME,
    Certificate,
    CreditState,
    RecordSource,
    RecordStatus,
    ServiceRecord,
)
from credits.ledger import memos
from credits.ledger.models import Account, AccountKind, Entry, SystemAccount, Transaction, TxKind
from credits.ledger.services import add_debt, locked_balance, system_account, transfer, user_account
from credits.notifications.services import notify
from credits.projects.models import Claim, ClaimStatus, Project, ProjectStatus
from credits.projects.services import can_manage
from credits.settings.services import get_policy
from credits.timeutil import local_day_range, local_today_range, local_zone, utcnow

MAX_RECORD = timedelta(hours=12)
DAILY_LIMIT_MINUTES = 12 * 60
AUTO_APPROVE_MINUTES = 8 * 60
LAPSE_AFTER = timedelta(hours=12)
CODE_WINDOW = 60  # seconds a check-in code is shown; the previous code is still accepted for one more window
CHECKIN_EARLY = timedelta(minutes=30)


class DailyLimit(DomainError):
    code, message = "daily_limit", _l("同一天的志愿时长不能超过 12 小时。")


class Overlap(DomainError):
    code, message = "overlap", _l("与您已有的另一条时长记录时间重叠。")


class WrongCode(InvalidInput):
    """A code that is not the project's current one: bad input (SPEC 3.2's 422 validation_error), on the code."""

    message = _l("签到码不正确或已过期，请扫描现场最新的二维码。")


def _fail(field: str, message: Any) -> InvalidInput:
    return InvalidInput(fields={field: [str(message)]})


# --- check-in codes ----------------------------------------------------------------------------------


def _code_for(project_id: int, window: int, coordinator_id: int) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(key, f"checkin:{project_id}:{coordinator_id}:{window}".encode(), hashlib.sha256).digest()
    return f"{int.from_bytes(digest[:8], 'big') % 1_000_000:06d}"


def checkin_code(project: Project, *, actor: User) -> tuple[str, datetime]:
    """The project's current on-site code as this coordinator shows it, and when it rotates. Derived from the
    secret key, the coordinator and the clock, so every app process agrees without storing anything, and a
    check-in knows whose code it used (SPEC 2.3: who vouched for it)."""
    if not can_manage(project, actor):
        raise Forbidden()
    now = utcnow()
    if project.status not in (ProjectStatus.PUBLISHED, ProjectStatus.CLOSED) or not (
            project.starts_at - CHECKIN_EARLY <= now < project.ends_at):
        raise InvalidState(_l("只有进行中的项目可以显示签到码。"))
    window = int(now.timestamp()) // CODE_WINDOW
    return (_code_for(project.id, window, actor.id),
            datetime.fromtimestamp((window + 1) * CODE_WINDOW, tz=now.tzinfo))


@dataclass(frozen=True)
class Attendance:
    """The check-in screen's count: confirmed claims, how many of them checked in today, how many are on site."""

    confirmed: int
    checked_in: int
    present: int


def attendance(project: Project, *, actor: User) -> Attendance:
    """Who has checked in to the project today (local day), of its confirmed claims, and who is still on site (an
    open check-in not yet lapsed). A check-in rejected or revoked on review does not count."""
    if not can_manage(project, actor):
        raise Forbidden()
    now = utcnow()
    today, _tomorrow = local_today_range(now)
    counted = (select(ServiceRecord.claim_id, ServiceRecord.status, ServiceRecord.started_at)
               .join(Claim, Claim.id == ServiceRecord.claim_id)
               .where(ServiceRecord.project_id == project.id, ServiceRecord.source == RecordSource.CHECKIN,
                      ServiceRecord.started_at >= today, Claim.status == ClaimStatus.CONFIRMED,
                      ServiceRecord.status.not_in((RecordStatus.REJECTED, RecordStatus.REVOKED)))
               .subquery())
    on_site = (counted.c.status == RecordStatus.OPEN) & (counted.c.started_at > now - LAPSE_AFTER)
    checked_in, present = db.session.execute(
        select(func.count(counted.c.claim_id.distinct()),
               func.count(case((on_site, counted.c.claim_id)).distinct()))).one()
    confirmed = db.session.scalar(select(func.count(Claim.id)).where(Claim.project_id == project.id,
                                                                     Claim.status == ClaimStatus.CONFIRMED))
    return Attendance(confirmed=confirmed, checked_in=checked_in, present=present)


def checkin_digits(text: str) -> str:
    """The digits of a typed, pasted or scanned check-in code: full-width digits read as digits, spaces and
    anything else dropped (only ASCII digits, which compare_digest can compare)."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", str(text)) if ch in string.digits)


def _check_code(project: Project, code: str, now: datetime) -> int:
    """The coordinator whose current (or previous) code this is. Raises WrongCode."""
    window = int(now.timestamp()) // CODE_WINDOW
    code = checkin_digits(code)
    for coordinator_id in db.session.scalars(
            select(User.id).join(UserRole, UserRole.user_id == User.id)
            .where(User.organization_id == project.organization_id, User.is_active_user.is_(True),
                   UserRole.role == Role.COORDINATOR)):
        if any(hmac.compare_digest(code, _code_for(project.id, w, coordinator_id)) for w in (window, window - 1)):
            return coordinator_id
    raise WrongCode(fields={"code": [str(WrongCode.message)]})


# --- creating records --------------------------------------------------------------------------------


def _own_confirmed_claim(claim: Claim, volunteer: User) -> None:
    if claim.volunteer_id != volunteer.id:
        raise Forbidden()
    if claim.status != ClaimStatus.CONFIRMED:
        raise InvalidState(_l("只有已确认的认领可以记录时长。"))



def _overlap(clash: ServiceRecord) -> Overlap:
    """The overlap refusal, naming the record in the way: an open check-in is the usual one, and the way out is to
    check out of it first."""
    at = clash.started_at.astimezone(local_zone()).strftime("%m-%d %H:%M")
    if clash.status == RecordStatus.OPEN:
        message = _l("您在“%(title)s”%(time)s 的签到还没有签退：请先签退，再签到或补录。",
                     title=clash.project.title, time=at)
    else:
        message = _l("与您在“%(title)s”%(time)s 开始的时长记录时间重叠。", title=clash.project.title, time=at)
    return Overlap(message, record_id=clash.id)


def _local_days(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The parts of [start, end) falling on each local (Asia/Shanghai) calendar day."""
    zone = local_zone()
    parts, cursor = [], start
    while cursor < end:
        local = cursor.astimezone(zone)
        midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        part_end = min(end, midnight.astimezone(start.tzinfo))
        parts.append((cursor, part_end))
        cursor = part_end
    return parts


def _minutes(start: datetime, end: datetime) -> int:
    return int((end - start).total_seconds() // 60)


def _validate_period(project: Project, volunteer: User, start: datetime, end: datetime, *,
                     exclude_id: int | None = None) -> int:
    """SPEC 2.2's refusals, each changing nothing. Returns the record's minutes."""
    now = utcnow()
    if end <= start:
        raise _fail("ended_at", _l("结束时间必须晚于开始时间。"))
    if end - start < timedelta(minutes=1):  # minutes are whole: 59 seconds would be a record of 0 minutes
        raise _fail("ended_at", _l("时长不足 1 分钟。"))
    if end > now + timedelta(minutes=1):
        raise _fail("ended_at", _l("不能记录未来的时间。"))
    if start < project.starts_at or end > project.ends_at:
        raise _fail("started_at", _l("时长必须在项目时间范围内。"))
    if end - start > MAX_RECORD:
        raise _fail("ended_at", _l("单条记录不能超过 12 小时。"))
    others = select(ServiceRecord).where(ServiceRecord.volunteer_id == volunteer.id,
                                         ServiceRecord.status.in_(HOLDING_TIME))
    if exclude_id is not None:
        others = others.where(ServiceRecord.id != exclude_id)
    clash = db.session.scalar(others.where(
        ServiceRecord.started_at < end,
        or_(ServiceRecord.ended_at.is_(None), ServiceRecord.ended_at > start)).limit(1))
    if clash is not None:
        raise _overlap(clash)
    for day_start, day_end in _local_days(start, end):
        midnight = day_start.astimezone(local_zone()).replace(hour=0, minute=0, second=0, microsecond=0)
        if _minutes_on_day(volunteer, midnight, exclude_id) + _minutes(day_start, day_end) > DAILY_LIMIT_MINUTES:
            raise DailyLimit()
    return _minutes(start, end)


def _minutes_on_day(volunteer: User, midnight: datetime, exclude_id: int | None) -> int:
    """Minutes of the volunteer's time-holding records that fall on the local day starting at `midnight`."""
    day_end = midnight + timedelta(days=1)
    stmt = select(ServiceRecord).where(
        ServiceRecord.volunteer_id == volunteer.id, ServiceRecord.status.in_(HOLDING_TIME),
        ServiceRecord.ended_at.is_not(None), ServiceRecord.started_at < day_end, ServiceRecord.ended_at > midnight)
    if exclude_id is not None:
        stmt = stmt.where(ServiceRecord.id != exclude_id)
    total = 0
    for record in db.session.scalars(stmt):
        total += _minutes(max(record.started_at, midnight), min(record.ended_at, day_end))
    return total


def file_manual(claim: Claim, data: dict[str, Any], *, volunteer: User) -> ServiceRecord:
    """A 补录 record: always waits for a coordinator of the organising organisation."""
    _own_confirmed_claim(claim, volunteer)
    lock(volunteer)  # one volunteer's requests, one at a time
    start, end = data["started_at"], data["ended_at"]
    days = get_policy()["manual_record_days"]
    if end < utcnow() - timedelta(days=days):
        raise _fail("started_at", _l("补录须在服务后 %(n)s 天内提交。", n=days))
    minutes = _validate_period(claim.project, volunteer, start, end)
    record = ServiceRecord(claim=claim, volunteer_id=volunteer.id, project_id=claim.project_id,
                           started_at=start, ended_at=end, minutes=minutes, note=data.get("note") or "",
                           source=RecordSource.MANUAL, status=RecordStatus.PENDING)
    db.session.add(record)
    db.session.flush()
    record_event("hours.file", record, actor=volunteer, details={"minutes": minutes})
    return record


def check_in(claim: Claim, code: str, *, volunteer: User) -> ServiceRecord:
    """Open a check-in record with the project's current on-site code."""
    _own_confirmed_claim(claim, volunteer)
    project = claim.project
    now = utcnow()
    vouched_by = _check_code(project, code, now)
    if not (project.starts_at - CHECKIN_EARLY <= now < project.ends_at):
        raise InvalidState(_l("不在项目时间内，不能签到。"))
    lock(volunteer)  # one volunteer's requests, one at a time
    db.session.refresh(claim)  # a no-show marked while we waited for the lock (mark_no_show takes it too)
    _own_confirmed_claim(claim, volunteer)
    lapse_open_checkins(volunteer_id=volunteer.id)
    start = max(now, project.starts_at)
    clash = db.session.scalar(select(ServiceRecord).where(
        ServiceRecord.volunteer_id == volunteer.id, ServiceRecord.status.in_(HOLDING_TIME),
        or_(ServiceRecord.ended_at.is_(None), ServiceRecord.ended_at > start)).limit(1))
    if clash is not None:
        raise _overlap(clash)
    record = ServiceRecord(claim=claim, volunteer_id=volunteer.id, project_id=project.id, started_at=start,
                           source=RecordSource.CHECKIN, status=RecordStatus.OPEN, checkin_code_by_id=vouched_by)
    try:
        with db.session.begin_nested():
            db.session.add(record)
    except IntegrityError as exc:
        raise Overlap() from exc
    record_event("hours.checkin", record, actor=volunteer)
    return record


def check_out(claim: Claim, code: str, *, volunteer: User) -> tuple[ServiceRecord, int]:
    """Close the open check-in. It is approved at once (policy auto_approve_checkin) when it is at most 8 h long
    and the volunteer's check-in time on each local day it touches stays within 8 h, unless the volunteer is one of
    the project's own coordinators or showed a code they used, or the issuance needs a second person (SPEC 2.3);
    otherwise it waits for review. Returns the record and the coins issued.

    A check-out less than a minute after the check-in is refused (409 invalid_state) and the record stays open, so
    the volunteer can check out again later: no record of 0 minutes is made, and a tap too soon loses nothing."""
    _own_confirmed_claim(claim, volunteer)
    project = claim.project
    now = utcnow()
    vouched_by = _check_code(project, code, now)
    policy = get_policy()
    may_auto_approve = policy["auto_approve_checkin"] and not can_manage(project, volunteer)
    if may_auto_approve:
        # Taken before the volunteer's, as approvals take the reviewer's first: its daily issuance is decided here.
        lock(db.session.get(User, vouched_by))
    lock(volunteer)  # one volunteer's requests, one at a time
    lapse_open_checkins(volunteer_id=volunteer.id)
    # Locked, so that the lapse job (which does not take the volunteer lock) cannot lapse the record between
    # this read and the write below only for the write to bring it back.
    record = db.session.scalars(select(ServiceRecord).where(
        ServiceRecord.claim_id == claim.id, ServiceRecord.status == RecordStatus.OPEN)
        .with_for_update().execution_options(populate_existing=True)).one_or_none()
    if record is None:
        raise InvalidState(_l("您还没有签到，或签到已超过 12 小时失效，请补录。"))
    end = min(now, project.ends_at)
    if _minutes(record.started_at, end) < 1:
        raise InvalidState(_l("签到后还没有服务时间，不能签退。"))
    record.minutes = _validate_period(project, volunteer, record.started_at, end, exclude_id=record.id)
    record.ended_at = end
    record.status = RecordStatus.PENDING
    record.checkout_code_by_id = vouched_by
    db.session.flush()
    record_event("hours.checkout", record, actor=volunteer, details={"minutes": record.minutes})
    if (may_auto_approve and volunteer.id not in (record.checkin_code_by_id, vouched_by)
            and record.minutes <= AUTO_APPROVE_MINUTES and _checkin_days_within_cap(record)
            and not _needs_second_approval(record, vouched_by, policy)):
        _decide(record, RecordStatus.APPROVED, reviewer=None)
        return record, _tell_approved(record, _change_minutes(record, record.minutes, event="approve", actor=None))
    return record, 0


def _checkin_days_within_cap(record: ServiceRecord) -> bool:
    """Whether the volunteer's check-in time stays within the automatic-approval cap on every local day the record
    touches (a check-in past midnight counts on both days)."""
    for day_start, _day_end in _local_days(record.started_at, record.ended_at):
        midnight = day_start.astimezone(local_zone()).replace(hour=0, minute=0, second=0, microsecond=0)
        day_end = midnight + timedelta(days=1)
        rows = db.session.scalars(select(ServiceRecord).where(
            ServiceRecord.volunteer_id == record.volunteer_id, ServiceRecord.source == RecordSource.CHECKIN,
            ServiceRecord.status.in_(HOLDING_TIME), ServiceRecord.ended_at.is_not(None),
            ServiceRecord.started_at < day_end, ServiceRecord.ended_at > midnight))
        if sum(_minutes(max(r.started_at, midnight), min(r.ended_at, day_end)) for r in rows) > AUTO_APPROVE_MINUTES:
            return False
    return True


def lapse_open_checkins(*, volunteer_id: int | None = None, now: datetime | None = None) -> int:
    """Open check-ins older than 12 h lapse: no hours (the volunteer may file a manual record)."""
    stmt = (update(ServiceRecord)
            .where(ServiceRecord.status == RecordStatus.OPEN,
                   ServiceRecord.started_at < (now or utcnow()) - LAPSE_AFTER)
            .values(status=RecordStatus.LAPSED).execution_options(synchronize_session=False))
    if volunteer_id is not None:
        stmt = stmt.where(ServiceRecord.volunteer_id == volunteer_id)
    return db.session.execute(stmt).rowcount


# --- review ------------------------------------------------------------------------------------------


def get_record(record_id: int, *, viewer: Any) -> ServiceRecord:
    """A record its volunteer, the organiser's coordinators and admins (who oversee issuance) may see.
    Raises NotFound."""
    record = db.session.get(ServiceRecord, record_id)
    if record is None or not (record.volunteer_id == getattr(viewer, "id", None)
                              or can_manage(record.project, viewer)
                              or (getattr(viewer, "is_authenticated", False) and viewer.has_role(Role.ADMIN))):
        raise NotFound(what="record")
    return record


def _require_reviewer(record: ServiceRecord, reviewer: User) -> None:
    """The organiser's coordinators review; an admin may be the second person of a four-eyes approval. Nobody
    reviews their own records."""
    second = record.status == RecordStatus.AWAITING_SECOND_APPROVAL and reviewer.has_role(Role.ADMIN)
    if not (can_manage(record.project, reviewer) or second):
        raise Forbidden()
    if record.volunteer_id == reviewer.id:
        raise Forbidden(_l("不能审核自己的时长记录。"))


# The reviews a status comes from, the audit action, and the refusal when the record is in none of them.
REVIEWS = {
    RecordStatus.APPROVED: ((RecordStatus.PENDING, RecordStatus.AWAITING_SECOND_APPROVAL), "hours.approve",
                            _l("只有待审核的记录可以通过。")),
    RecordStatus.REJECTED: ((RecordStatus.PENDING, RecordStatus.AWAITING_SECOND_APPROVAL), "hours.reject",
                            _l("只有待审核的记录可以驳回。")),
    RecordStatus.REVOKED: ((RecordStatus.APPROVED,), "hours.revoke", _l("只有已通过的记录可以撤销。")),
}


def _review(record: ServiceRecord, status: RecordStatus, *, reviewer: User) -> None:
    """Permission, then the record's row lock (so the second of two simultaneous reviews sees the first), then
    whether the record is in a state the review comes from."""
    _require_reviewer(record, reviewer)
    lock(record)
    if record.status not in REVIEWS[status][0]:
        raise InvalidState(REVIEWS[status][2])
    _require_reviewer(record, reviewer)  # the state may have changed while we waited for the lock


def _decide(record: ServiceRecord, status: RecordStatus, *, reviewer: User | None, reason: str | None = None) -> None:
    record.status = status
    record.reason = reason if reason is not None else record.reason
    record.reviewed_by_id = reviewer.id if reviewer else None
    record.reviewed_at = utcnow()
    db.session.flush()
    record_event(REVIEWS[status][1], record, actor=reviewer,
                 details={"minutes": record.minutes, "reason": reason, "auto": reviewer is None,
                          "first_approved_by": record.first_approved_by_id})


def approve(record: ServiceRecord, *, reviewer: User) -> int:
    """Approve a pending record and issue what its rule now owes; returns the coins issued. An approval that would
    issue more than `second_approval_coins`, or take the reviewer past `daily_issue_limit` coins today, is only a
    first approval: the record waits in awaiting_second_approval (0 coins) for another coordinator of the organiser
    or an admin, whose approval issues. Raises Forbidden (also for the first approver approving again),
    InvalidState (also for the second of two simultaneous approvals)."""
    lock(reviewer)  # first: the reviewer's issuance today is decided under it (check-outs take it first too)
    _review(record, RecordStatus.APPROVED, reviewer=reviewer)
    if record.status == RecordStatus.AWAITING_SECOND_APPROVAL:
        if record.first_approved_by_id == reviewer.id:
            raise Forbidden(_l("这条记录由您首次通过，需由另一位协调员或管理员复核。"))
    elif _needs_second_approval(record, reviewer.id, get_policy()):
        record.status = RecordStatus.AWAITING_SECOND_APPROVAL
        record.first_approved_by_id = reviewer.id
        record.first_approved_at = utcnow()
        db.session.flush()
        record_event("hours.first_approve", record, actor=reviewer,
                     details={"minutes": record.minutes, "coins": coins_owed(record)})
        return 0
    _decide(record, RecordStatus.APPROVED, reviewer=reviewer)
    return _tell_approved(record, _change_minutes(record, record.minutes, event="approve", actor=reviewer))


def _tell_approved(record: ServiceRecord, coins: int) -> int:
    notify(record.volunteer, "hours_approved", link="/me/hours", title=record.project.title,
           minutes=record.minutes, coins=coins)
    return coins


def reject(record: ServiceRecord, reason: str, *, reviewer: User) -> ServiceRecord:
    _review(record, RecordStatus.REJECTED, reviewer=reviewer)
    _decide(record, RecordStatus.REJECTED, reviewer=reviewer, reason=reason)
    notify(record.volunteer, "hours_rejected", link="/me/hours", title=record.project.title, reason=reason)
    return record


def revoke(record: ServiceRecord, reason: str, *, reviewer: User) -> int:
    """Revoke an approved record and claw back what the rule no longer owes. Returns the coins clawed back."""
    _review(record, RecordStatus.REVOKED, reviewer=reviewer)
    _decide(record, RecordStatus.REVOKED, reviewer=reviewer, reason=reason)
    return -_change_minutes(record, -record.minutes, event="revoke", actor=reviewer)


# --- four eyes ---------------------------------------------------------------------------------------


def coins_owed(record: ServiceRecord) -> int:
    """The coins approving this record would issue now under the cumulative rule."""
    state = db.session.scalars(select(CreditState).filter_by(volunteer_id=record.volunteer_id,
                                                            project_id=record.project_id)).one_or_none()
    minutes = state.approved_minutes if state else 0
    settled = state.issued_net - state.shortfall if state else 0
    return max(0, earned_coins(minutes + record.minutes, record.project) - settled)


def issued_today(coordinator_id: int) -> int:
    """Coins issued today (Asia/Shanghai) by approvals this coordinator made, and by automatic approvals of
    check-outs with their code: what `daily_issue_limit` caps."""
    today = utcnow().astimezone(local_zone()).date()
    start, end = local_day_range(today, today)
    issued = (select(func.coalesce(func.sum(Transaction.amount), 0))
              .where(Transaction.kind == TxKind.ISSUE, Transaction.created_at >= start, Transaction.created_at < end))
    by_hand = db.session.scalar(issued.where(Transaction.actor_id == coordinator_id))
    of_record = (Transaction.ref_type == "service_record") & (Transaction.ref_id == ServiceRecord.id)
    vouched = db.session.scalar(
        issued.join(ServiceRecord, of_record)
        .where(Transaction.actor_id.is_(None), ServiceRecord.checkout_code_by_id == coordinator_id))
    return int(by_hand) + int(vouched)


def _needs_second_approval(record: ServiceRecord, approver_id: int, policy: dict[str, Any]) -> bool:
    """SPEC 2.3: more than `second_approval_coins` at once, or past the approver's `daily_issue_limit` today. The
    caller holds the approver's row lock, so two approvals at once cannot both fit under the daily limit."""
    coins = coins_owed(record)
    return coins > policy["second_approval_coins"] or (
        coins > 0 and issued_today(approver_id) + coins > policy["daily_issue_limit"])


# --- coins -------------------------------------------------------------------------------------------


def earned_coins(approved_minutes: int, project: Project) -> int:
    return approved_minutes // project.block_minutes * project.coins_per_block


def _credit_state(volunteer_id: int, project_id: int) -> CreditState:
    """The (volunteer, project) row, created if missing, locked for this transaction."""
    stmt = select(CreditState).filter_by(volunteer_id=volunteer_id, project_id=project_id).with_for_update()
    state = db.session.scalars(stmt).one_or_none()
    if state is None:
        try:
            with db.session.begin_nested():
                db.session.add(CreditState(volunteer_id=volunteer_id, project_id=project_id))
        except IntegrityError:
            pass
        state = db.session.scalars(stmt.execution_options(populate_existing=True)).one()
    return state


def _change_minutes(record: ServiceRecord, minutes: int, *, event: str, actor: User | None) -> int:
    """Apply an approval (+) or revocation (−) of minutes and settle coins by the cumulative rule.
    Returns the coins moved: positive issued, negative clawed back."""
    state = _credit_state(record.volunteer_id, record.project_id)
    db.session.execute(update(CreditState).filter_by(volunteer_id=state.volunteer_id, project_id=state.project_id)
                       .values(approved_minutes=CreditState.approved_minutes + minutes)
                       .execution_options(synchronize_session=False))
    db.session.execute(update(User).where(User.id == record.volunteer_id)
                       .values(approved_minutes=User.approved_minutes + minutes)
                       .execution_options(synchronize_session=False))
    db.session.refresh(state)
    return settle(state, key=f"hours:{record.id}:{event}", record=record, actor=actor)


def settle(state: CreditState, *, key: str, record: ServiceRecord, actor: User | None) -> int:
    """delta = earned − (issued_net − shortfall): issue a positive delta (which pays any debt of the volunteer's
    first, in the ledger); claw back a negative one up to the balance, and what the balance cannot cover becomes
    the volunteer's debt, recorded as this pair's shortfall. The caller holds the state's row lock."""
    project = state.project
    earned = earned_coins(state.approved_minutes, project)
    delta = earned - (state.issued_net - state.shortfall)
    volunteer = user_account(state.volunteer_id)
    issuance = system_account(SystemAccount.ISSUANCE)
    shortfall = 0
    if delta > 0:
        reached = earned // project.coins_per_block * project.block_minutes
        transfer(TxKind.ISSUE, issuance, volunteer, delta, actor=actor, ref=("service_record", record.id),
                 memo=memos.issued(project.title, reached), idempotency_key=key)
        moved = delta
    elif delta < 0:
        claw = min(-delta, locked_balance(volunteer))
        if claw > 0:
            transfer(TxKind.CLAWBACK, volunteer, issuance, claw, actor=actor, ref=("service_record", record.id),
                     memo=memos.write(memos.CLAWED_BACK, project=project.title), idempotency_key=key)
        moved, shortfall = -claw, -delta - claw
        if shortfall:
            add_debt(volunteer, shortfall)
    else:
        return 0
    db.session.execute(update(CreditState).filter_by(volunteer_id=state.volunteer_id, project_id=state.project_id)
                       .values(issued_net=CreditState.issued_net + moved,
                               shortfall=CreditState.shortfall + shortfall)
                       .execution_options(synchronize_session=False))
    db.session.refresh(state)
    return moved


# --- expiry ------------------------------------------------------------------------------------------


def expire_due(now: datetime | None = None) -> dict[str, int]:
    """What `flask credits expire` does for hours and coins: lapse open check-ins older than 12 h and, under
    policy coin_expiry = end_of_next_year, expire coins issued in year Y at the end of Y+1 (Asia/Shanghai),
    oldest first. Safe to run again: nothing expires twice. Returns the counts."""
    now = now or utcnow()
    counts = {"lapsed_checkins": lapse_open_checkins(now=now), "expired_accounts": 0, "expired_coins": 0}
    if get_policy()["coin_expiry"] == "end_of_next_year":
        cutoff = datetime(now.astimezone(local_zone()).year - 1, 1, 1, tzinfo=local_zone())
        for account_id in db.session.scalars(_expirable(cutoff).with_only_columns(Account.id)).all():
            if coins := _expire_account(account_id, cutoff):
                counts["expired_accounts"] += 1
                counts["expired_coins"] += coins
    if any(counts.values()):
        record_event("hours.expire", actor=None, details={**counts, "now": now.isoformat()})
    return counts


def _expirable(cutoff: datetime):
    """Per volunteer account with coins to expire: (account id, balance, coins expired so far, coins expirable).

    Spending takes the oldest coins first, so what remains of the coins credited before `cutoff` is those coins
    less everything consumed since (clawbacks, holds net of releases, negative adjustments) less what has
    expired already — capped by the balance. One aggregate query over the entries."""
    amount = Entry.amount
    kind = Transaction.kind

    def total(condition):
        return func.coalesce(func.sum(case((condition, amount), else_=0)), 0)

    credited = total(kind.in_((TxKind.ISSUE, TxKind.ADJUST)) & (amount > 0) & (Transaction.created_at < cutoff))
    consumed = -total(kind.in_((TxKind.CLAWBACK, TxKind.HOLD, TxKind.RELEASE))
                      | ((kind == TxKind.ADJUST) & (amount < 0)))
    expired = -total(kind == TxKind.EXPIRE)
    remaining = credited - consumed - expired
    return (select(Account.id, Account.balance, expired.label("expired"),
                   case((remaining < Account.balance, remaining), else_=Account.balance).label("expirable"))
            .select_from(Entry).join(Transaction, Transaction.id == Entry.transaction_id)
            .join(Account, Account.id == Entry.account_id)
            .where(Account.kind == AccountKind.VOLUNTEER, Account.balance > 0)
            .group_by(Account.id, Account.balance).having(remaining > 0).order_by(Account.id))


def _expire_account(account_id: int, cutoff: datetime) -> int:
    """Expire one account's due coins under its row lock; the key (account, cutoff year, coins expired so far)
    makes a second run, or a concurrent one, post nothing more."""
    account = db.session.get(Account, account_id)
    locked_balance(account)  # taken before the sums are read, so they cannot change under us
    row = db.session.execute(_expirable(cutoff).where(Account.id == account_id)).one_or_none()
    if row is None or row.expirable <= 0:
        return 0
    coins = int(row.expirable)
    transfer(TxKind.EXPIRE, account, system_account(SystemAccount.EXPIRED), coins, actor=None,
             memo=memos.write(memos.EXPIRED, year=cutoff.year - 1),
             idempotency_key=f"expire:{account_id}:{cutoff.year}:{int(row.expired)}")
    return coins


# --- lists -------------------------------------------------------------------------------------------


def review_queue(reviewer: User, *, status: str | None = None, project_id: int | None = None):
    """Records of projects organised by the reviewer's organisation, oldest first."""
    if not reviewer.has_role(Role.COORDINATOR):
        raise Forbidden()
    require_own_organization(reviewer)
    stmt = (select(ServiceRecord).join(Project, Project.id == ServiceRecord.project_id)
            .where(Project.organization_id == reviewer.organization_id))
    if status:
        stmt = stmt.where(ServiceRecord.status == status)
    if project_id:
        stmt = stmt.where(ServiceRecord.project_id == project_id)
    return stmt.order_by(ServiceRecord.created_at, ServiceRecord.id)


def my_records(volunteer: User, *, status: str | None = None):
    stmt = select(ServiceRecord).where(ServiceRecord.volunteer_id == volunteer.id)
    if status:
        stmt = stmt.where(ServiceRecord.status == status)
    return stmt.order_by(ServiceRecord.started_at.desc(), ServiceRecord.id.desc())


# --- certificates ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CertificateStatus:
    certificate: Certificate
    revoked_minutes: int  # minutes of the certificate's records revoked since it was issued


def issue_certificate(volunteer: User, period_from: datetime, period_to: datetime) -> Certificate:
    """A 志愿服务证明 of the volunteer's approved hours in the period, by project and organising organisation."""
    if period_to <= period_from:
        raise _fail("to", _l("结束日期必须晚于开始日期。"))
    records = db.session.scalars(
        select(ServiceRecord).where(ServiceRecord.volunteer_id == volunteer.id,
                                    ServiceRecord.status == RecordStatus.APPROVED,
                                    ServiceRecord.started_at >= period_from, ServiceRecord.started_at < period_to)
        .order_by(ServiceRecord.started_at)).all()
    if not records:
        raise InvalidState(_l("这段时间没有已通过的志愿时长。"))
    lines: dict[int, dict] = {}
    for r in records:
        line = lines.setdefault(r.project_id, {"project_id": r.project_id, "title": r.project.title,
                                               "organization": r.project.organization.name, "minutes": 0})
        line["minutes"] += r.minutes
    organisations = {r.project.organization_id for r in records}
    certificate = Certificate(
        number=f"FC{utcnow().astimezone(local_zone()):%Y%m%d}{secrets.token_hex(5).upper()}",
        volunteer_id=volunteer.id, organization_id=organisations.pop() if len(organisations) == 1 else None,
        period_from=period_from, period_to=period_to, total_minutes=sum(r.minutes for r in records),
        lines=list(lines.values()), record_ids=[r.id for r in records])
    db.session.add(certificate)
    db.session.flush()
    record_event("certificate.issue", certificate, actor=volunteer, details={"number": certificate.number})
    return certificate


def verify_certificate(number: str) -> CertificateStatus:
    certificate = db.session.scalars(select(Certificate).where(Certificate.number == number.strip().upper())
                                     ).one_or_none()
    if certificate is None:
        raise NotFound(what="certificate")
    revoked = db.session.scalar(select(func.coalesce(func.sum(ServiceRecord.minutes), 0)).where(
        ServiceRecord.id.in_(certificate.record_ids), ServiceRecord.status == RecordStatus.REVOKED))
    return CertificateStatus(certificate, revoked)
