"""The integrity report on issuance (SPEC 2.3): what no ledger invariant can catch, because the ledger is right and
only the way the coins came to be is wrong. One set of queries for the admin's page and `flask credits
audit-issuance`: who issued how much, on which projects, under which rules, and the patterns a one-person mint
leaves behind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, String, and_, case, cast, func, or_, select
from sqlalchemy.orm import aliased

from credits.auth.models import AuditEvent, Role, User, UserRole
from credits.extensions import db
from credits.hours.models import RecordSource, RecordStatus, ServiceRecord
from credits.ledger.models import Transaction, TxKind
from credits.projects.models import Claim, Project

# A project that this many claims reach from accounts opened within a day before claiming is flagged.
BURST_ACCOUNTS = 5
BURST_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Section:
    key: str
    title: Any  # a lazy string
    columns: tuple[Any, ...]
    query: Callable[[datetime, datetime, dict[str, Any]], Select]
    finding: bool  # a pattern to look into (the command exits 1 when it has rows), not only a table to read


def _issues(start: datetime, end: datetime) -> Select:
    """Issue transactions of the period joined to the record each settled (every issue refers to one)."""
    return (select().select_from(Transaction)
            .join(ServiceRecord, and_(Transaction.ref_type == "service_record", Transaction.ref_id == ServiceRecord.id))
            .where(Transaction.kind == TxKind.ISSUE, Transaction.created_at >= start, Transaction.created_at < end))


def _days_between(earlier, later):
    """Days from one time column to another, as SQL on either database (SQLite keeps times as ISO text)."""
    if db.session.get_bind().dialect.name == "sqlite":
        return func.julianday(later) - func.julianday(earlier)
    return func.extract("epoch", later - earlier) / 86400


def _rate(project=Project):
    """Coins per hour under a project's rule."""
    return project.coins_per_block * 60.0 / project.block_minutes


def issued_by_coordinator(start: datetime, end: datetime, policy: dict[str, Any]) -> Select:
    """Coins each coordinator issued: by approving, and by showing the code of check-outs approved automatically."""
    by_hand = func.sum(case((Transaction.actor_id.is_not(None), Transaction.amount), else_=0))
    vouched = func.sum(case((Transaction.actor_id.is_(None), Transaction.amount), else_=0))
    return (_issues(start, end)
            .add_columns(User.name, User.phone, func.count(Transaction.id), by_hand, vouched)
            .join(User, User.id == func.coalesce(Transaction.actor_id, ServiceRecord.checkout_code_by_id))
            .group_by(User.id, User.name, User.phone)
            .order_by(func.sum(Transaction.amount).desc(), User.id))


def issued_by_project(start: datetime, end: datetime, policy: dict[str, Any]) -> Select:
    """Coins issued on each project, with its rule in coins per hour."""
    return (_issues(start, end)
            .add_columns(Project.id, Project.title, _rate(), func.count(func.distinct(ServiceRecord.volunteer_id)),
                         func.sum(Transaction.amount))
            .join(Project, Project.id == ServiceRecord.project_id)
            .group_by(Project.id, Project.title, Project.coins_per_block, Project.block_minutes)
            .order_by(func.sum(Transaction.amount).desc(), Project.id))


def rules_above_default(start: datetime, end: datetime, policy: dict[str, Any]) -> Select:
    """Projects whose rule pays more per hour than the policy's default rule (informational); those above the
    policy's maximum are findings of their own."""
    default = policy["coins_per_block"] * 60.0 / policy["block_minutes"]
    return (select(Project.id, Project.title, Project.status, _rate(), Project.created_at)
            .where(_rate() > default, Project.status != "draft")
            .order_by(_rate().desc(), Project.id))


def rules_above_maximum(start: datetime, end: datetime, policy: dict[str, Any]) -> Select:
    """Projects whose rule is past today's bounds (made before they were set, or before they were lowered), with
    the coins they have issued in all."""
    issued = (select(func.coalesce(func.sum(Transaction.amount), 0))
              .join(ServiceRecord, and_(Transaction.ref_type == "service_record",
                                        Transaction.ref_id == ServiceRecord.id))
              .where(Transaction.kind == TxKind.ISSUE, ServiceRecord.project_id == Project.id)
              .scalar_subquery())
    return (select(Project.id, Project.title, Project.status, _rate(), issued)
            .where(Project.status != "draft",
                   (_rate() > policy["max_coins_per_hour"]) | (Project.block_minutes < policy["min_block_minutes"]))
            .order_by(issued.desc(), Project.id))


def late_records(start: datetime, end: datetime, policy: dict[str, Any]) -> Select:
    """Records filed long after the service (more than `manual_record_days`), or for time before the volunteer
    claimed the project: filed in the period, whatever their state now."""
    return (select(ServiceRecord.id, User.name, Project.title, ServiceRecord.started_at, ServiceRecord.created_at,
                   Claim.created_at, ServiceRecord.status)
            .join(User, User.id == ServiceRecord.volunteer_id).join(Project, Project.id == ServiceRecord.project_id)
            .join(Claim, Claim.id == ServiceRecord.claim_id)
            .where(ServiceRecord.created_at >= start, ServiceRecord.created_at < end,
                   ServiceRecord.source == RecordSource.MANUAL,
                   or_(ServiceRecord.started_at < Claim.created_at,
                       _days_between(ServiceRecord.ended_at, ServiceRecord.created_at) > policy["manual_record_days"]))
            .order_by(ServiceRecord.created_at.desc(), ServiceRecord.id))


def self_issued(start: datetime, end: datetime, policy: dict[str, Any]) -> Select:
    """Records of a project's own coordinators approved with nobody else: automatically at check-out."""
    coordinator = select(UserRole.user_id).where(UserRole.role == Role.COORDINATOR)
    return (select(ServiceRecord.id, User.name, Project.title, ServiceRecord.minutes, ServiceRecord.reviewed_at)
            .join(User, User.id == ServiceRecord.volunteer_id).join(Project, Project.id == ServiceRecord.project_id)
            .where(ServiceRecord.status == RecordStatus.APPROVED, ServiceRecord.reviewed_by_id.is_(None),
                   ServiceRecord.reviewed_at >= start, ServiceRecord.reviewed_at < end,
                   User.organization_id == Project.organization_id, User.id.in_(coordinator))
            .order_by(ServiceRecord.reviewed_at.desc(), ServiceRecord.id))


def approved_by_creator(start: datetime, end: datetime, policy: dict[str, Any]) -> Select:
    """Volunteers whose account another person created, every one of whose approved records (some approved in
    the period) that same person approved."""
    creator = aliased(User, name="creator")
    created = (select(AuditEvent.actor_id.label("creator_id"), AuditEvent.object_id.label("user_id"))
               .where(AuditEvent.action == "user.create", AuditEvent.object_type == "users").subquery())
    approved = ServiceRecord.status == RecordStatus.APPROVED
    return (select(User.id, User.name, creator.name, func.count(ServiceRecord.id),
                   func.sum(ServiceRecord.minutes))
            .join(created, created.c.user_id == cast(User.id, String))
            .join(creator, and_(creator.id == created.c.creator_id, creator.id != User.id))
            .join(ServiceRecord, and_(ServiceRecord.volunteer_id == User.id, approved))
            .group_by(User.id, User.name, creator.id, creator.name)
            .having(func.count(ServiceRecord.id) == func.sum(case((ServiceRecord.reviewed_by_id == creator.id, 1),
                                                                  else_=0)),
                    func.max(ServiceRecord.reviewed_at) >= start, func.min(ServiceRecord.reviewed_at) < end)
            .order_by(func.sum(ServiceRecord.minutes).desc(), User.id))


def account_bursts(start: datetime, end: datetime, policy: dict[str, Any]) -> Select:
    """Projects claimed in the period by at least BURST_ACCOUNTS accounts opened within a day before their claim."""
    age = _days_between(User.created_at, Claim.created_at)
    fresh = and_(age >= 0, age < BURST_WINDOW / timedelta(days=1))
    return (select(Project.id, Project.title, func.count(Claim.id), func.min(Claim.created_at))
            .join(Claim, Claim.project_id == Project.id).join(User, User.id == Claim.volunteer_id)
            .where(Claim.created_at >= start, Claim.created_at < end, fresh)
            .group_by(Project.id, Project.title).having(func.count(Claim.id) >= BURST_ACCOUNTS)
            .order_by(func.count(Claim.id).desc(), Project.id))


def awaiting_second_approval(start: datetime, end: datetime, policy: dict[str, Any]) -> Select:
    """Every record waiting for its second approver, whenever first approved (it blocks the volunteer's coins)."""
    first = aliased(User, name="first")
    return (select(ServiceRecord.id, User.name, Project.title, ServiceRecord.minutes, first.name,
                   ServiceRecord.first_approved_at)
            .join(User, User.id == ServiceRecord.volunteer_id).join(Project, Project.id == ServiceRecord.project_id)
            .join(first, first.id == ServiceRecord.first_approved_by_id)
            .where(ServiceRecord.status == RecordStatus.AWAITING_SECOND_APPROVAL)
            .order_by(ServiceRecord.first_approved_at, ServiceRecord.id))


SECTIONS = [
    Section("awaiting", _l("等待第二人复核"),
            (_l("记录"), _l("志愿者"), _l("项目"), _l("分钟"), _l("初审人"), _l("初审时间")),
            awaiting_second_approval, finding=False),
    Section("by_coordinator", _l("各协调员发放的公益币"),
            (_l("协调员"), _l("手机号"), _l("笔数"), _l("审核发放"), _l("签到码自动发放")),
            issued_by_coordinator, finding=False),
    Section("by_project", _l("各项目发放的公益币"),
            (_l("项目编号"), _l("项目"), _l("每小时公益币"), _l("志愿者数"), _l("发放")),
            issued_by_project, finding=False),
    Section("above_default", _l("高于默认规则的项目"),
            (_l("项目编号"), _l("项目"), _l("状态"), _l("每小时公益币"), _l("创建时间")),
            rules_above_default, finding=False),
    Section("above_maximum", _l("超出政策上限的发币规则"),
            (_l("项目编号"), _l("项目"), _l("状态"), _l("每小时公益币"), _l("已发放")),
            rules_above_maximum, finding=True),
    Section("late_records", _l("补录过晚或早于认领的记录"),
            (_l("记录"), _l("志愿者"), _l("项目"), _l("服务开始"), _l("提交时间"), _l("认领时间"), _l("状态")),
            late_records, finding=True),
    Section("self_issued", _l("协调员本人的记录无人复核即通过"),
            (_l("记录"), _l("志愿者"), _l("项目"), _l("分钟"), _l("通过时间")),
            self_issued, finding=True),
    Section("approved_by_creator", _l("时长全部由开户人审核的志愿者"),
            (_l("用户编号"), _l("志愿者"), _l("开户并审核的人"), _l("记录数"), _l("分钟")),
            approved_by_creator, finding=True),
    Section("account_bursts", _l("新注册账号集中认领的项目"),
            (_l("项目编号"), _l("项目"), _l("新账号认领数"), _l("最早认领")),
            account_bursts, finding=True),
]
SECTIONS_BY_KEY = {section.key: section for section in SECTIONS}
