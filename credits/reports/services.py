"""The figures of SPEC 2.6, each one SQL aggregate over indexed columns, for any period of local days."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    Select,
    and_,
    case,
    distinct,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.orm import aliased

from credits.auth.models import Organization, OrgKind, Role, User, UserRole
from credits.database import lock
from credits.errors import Forbidden
from credits.extensions import db
from credits.hours.models import RecordStatus, ServiceRecord
from credits.ledger.models import Account, AccountKind, Entry, SystemAccount, Transaction, TxKind
from credits.merchants.models import Merchant, Service, Voucher, VoucherStatus
from credits.projects.models import Claim, ClaimStatus, Project, ProjectStatus
from credits.reports.models import LedgerDay, LedgerRollup
from credits.timeutil import local_day_range, local_zone, utcnow

# Periods longer than this are refused: the charts and the scans have to stay bounded.
MAX_PERIOD_DAYS = 366 * 5
# A local day's transactions are summed into ledger_days this long after the day ends.
SETTLING = timedelta(hours=1)
# Up to this many days the charts go by day, beyond it by month.
DAILY_UP_TO = 62
HELD = (ProjectStatus.PUBLISHED.value, ProjectStatus.CLOSED.value)  # projects that took place or will


@dataclass(frozen=True)
class Period:
    """Local days `first` to `last`, both included."""

    first: date
    last: date

    @classmethod
    def named(cls, name: str, today: date) -> Period:
        """This month, quarter or year, up to its end."""
        if name == "month":
            first = today.replace(day=1)
            return cls(first, _add_months(first, 1) - timedelta(days=1))
        if name == "quarter":
            return cls.quarter(today.year, (today.month - 1) // 3 + 1)
        if name == "year":
            return cls(today.replace(month=1, day=1), today.replace(month=12, day=31))
        raise ValueError(name)

    @classmethod
    def quarter(cls, year: int, number: int) -> Period:
        first = date(year, (number - 1) * 3 + 1, 1)
        return cls(first, _add_months(first, 3) - timedelta(days=1))

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        return local_day_range(self.first, self.last)

    @property
    def unit(self) -> str:
        return "day" if (self.last - self.first).days < DAILY_UP_TO else "month"

    def buckets(self) -> list[tuple[str, date, date]]:
        """The chart's buckets as (label, first day, last day), every one of them, so a quiet day or month
        shows as 0 and not as a gap; a month the period only partly covers keeps to the period's days."""
        buckets, day = [], self.first
        while day <= self.last:
            following = day + timedelta(days=1) if self.unit == "day" else _add_months(day.replace(day=1), 1)
            last = min(following - timedelta(days=1), self.last)
            buckets.append((day.isoformat() if self.unit == "day" else day.strftime("%Y-%m"), day, last))
            day = following
        return buckets


def _add_months(day: date, months: int) -> date:
    index = day.month - 1 + months
    return day.replace(year=day.year + index // 12, month=index % 12 + 1)


def _local_day(column):
    """The local day of a UTC timestamp column, computed in SQL, and how to turn what the database returns
    into a date."""
    if db.session.get_bind().dialect.name == "postgresql":
        return func.date_trunc("day", func.timezone(local_zone().key, column)), lambda value: value.date()
    # SQLite has no time zone database: shift by the zone's current offset (Asia/Shanghai has no DST).
    offset = int(datetime.now(local_zone()).utcoffset().total_seconds() // 60)
    return func.strftime("%Y-%m-%d", column, f"{offset:+d} minutes"), date.fromisoformat


def _per_bucket(period: Period, column, columns: Sequence, *criteria, group_by: Sequence = (),
                since: datetime | None = None) -> list[tuple]:
    """(chart label, *columns) for the rows whose timestamp `column` falls in each of the period's buckets
    (and not before `since`): one range scan per bucket, joined by UNION ALL. A local-date function on every
    row with a GROUP BY cost 2.5 (PostgreSQL) to 4.5 (SQLite) times as much over a year of service records."""
    labels, parts = [], []
    for label, first, last in period.buckets():
        start, end = local_day_range(first, last)
        start = start if since is None else max(start, since)
        if start < end:
            parts.append(select(literal_column(str(len(labels))), *columns)
                         .where(_within(column, start, end), *criteria).group_by(*group_by))
            labels.append(label)
    if not parts:
        return []
    stmt = parts[0] if len(parts) == 1 else union_all(*parts)
    return [(labels[slot], *rest) for slot, *rest in db.session.execute(stmt)]


def _within(column, start: datetime, end: datetime):
    return and_(column >= start, column < end)


# --- the dashboard ----------------------------------------------------------------------------------

# How each kind of transaction changes the coins volunteers hold (their accounts and escrow together).
OUTSTANDING_SIGN = {TxKind.ISSUE: 1, TxKind.CLAWBACK: -1, TxKind.REDEEM: -1, TxKind.EXPIRE: -1}


def _adjustments(start: datetime | None, end: datetime | None):
    """The net of admin adjustments toward volunteers: the one kind whose direction its amount does not say."""
    holder = or_(Account.kind == AccountKind.VOLUNTEER, Account.system_code == SystemAccount.ESCROW)
    stmt = (select(func.coalesce(func.sum(Entry.amount), 0))
            .join(Transaction, Transaction.id == Entry.transaction_id).join(Account, Account.id == Entry.account_id)
            .where(Transaction.kind == TxKind.ADJUST, holder))
    if start is not None:
        stmt = stmt.where(Transaction.created_at >= start)
    if end is not None:
        stmt = stmt.where(Transaction.created_at < end)
    return stmt.scalar_subquery()


def _outstanding_at(end: datetime) -> int:
    """Coins volunteers held at `end` (balances plus escrow): today's holdings less what moved since, read in
    one statement so both halves see the same snapshot."""
    live = (select(func.coalesce(func.sum(Account.balance), 0))
            .where(or_(Account.kind == AccountKind.VOLUNTEER, Account.system_code == SystemAccount.ESCROW))
            .scalar_subquery())
    signed = case(*[(Transaction.kind == kind.value, sign * Transaction.amount)
                    for kind, sign in OUTSTANDING_SIGN.items()], else_=0)
    since = (select(func.coalesce(func.sum(signed), 0))
             .where(Transaction.created_at >= end, Transaction.kind.in_([k.value for k in OUTSTANDING_SIGN]))
             .scalar_subquery())
    return int(db.session.scalar(select(live - since - _adjustments(end, None))))


def _coins_by_bucket(period: Period, kinds: list[str]) -> list[tuple[str, str, int]]:
    """(chart label, kind, coins) for the period: finished days from ledger_days, the days after them from the
    ledger itself."""
    rows: list[tuple[str, str, int]] = []
    first = period.first
    through = db.session.scalar(select(LedgerRollup.through))
    if through is not None and through >= first:
        upto = min(through, period.last)
        pattern = "%Y-%m-%d" if period.unit == "day" else "%Y-%m"
        rows += [(day.strftime(pattern), kind, int(amount)) for day, kind, amount in db.session.execute(
            select(LedgerDay.day, LedgerDay.kind, LedgerDay.amount)
            .where(LedgerDay.day >= first, LedgerDay.day <= upto, LedgerDay.kind.in_(kinds)))]
        first = upto + timedelta(days=1)
    if first <= period.last:
        since, _ = local_day_range(first, first)
        rows += [(label, kind, int(amount)) for label, kind, amount in _per_bucket(
            period, Transaction.created_at, [Transaction.kind, func.sum(Transaction.amount)],
            Transaction.kind.in_(kinds), group_by=[Transaction.kind], since=since)]
    return rows


def roll_up_ledger(now: datetime) -> int:
    """Sum each finished local day's transactions by kind into ledger_days, from the day after the last one
    summed up to yesterday, and return how many days were added; a second run adds none. A day counts as
    finished SETTLING after its end, so a transaction written just before midnight has committed by then.
    Flushes, never commits; concurrent runs queue on the one ledger_rollup row."""
    mark = db.session.get(LedgerRollup, 1)
    if mark is None:
        mark = LedgerRollup(id=1, through=None)
        db.session.add(mark)
        db.session.flush()
    lock(mark)
    last = (now.astimezone(local_zone()) - SETTLING).date() - timedelta(days=1)
    if mark.through is not None:
        first = mark.through + timedelta(days=1)
    else:
        oldest = db.session.scalar(select(func.min(Transaction.created_at)))
        first = oldest.astimezone(local_zone()).date() if oldest else last + timedelta(days=1)
    if first > last:
        return 0
    start, end = local_day_range(first, last)
    bucket, to_date = _local_day(Transaction.created_at)
    days = [{"day": to_date(when), "kind": kind, "amount": int(amount), "transactions": n}
            for when, kind, amount, n in db.session.execute(
                select(bucket, Transaction.kind, func.sum(Transaction.amount), func.count())
                .where(_within(Transaction.created_at, start, end)).group_by(bucket, Transaction.kind))]
    if days:
        db.session.execute(insert(LedgerDay), days)
    mark.through = last
    db.session.flush()
    return (last - first).days + 1


def summary(period: Period) -> dict[str, Any]:
    """Every figure of the dashboard for the period, with the series its charts draw."""
    start, end = period.bounds
    labels = [label for label, _, _ in period.buckets()]
    slot = {label: i for i, label in enumerate(labels)}
    series = {key: [0] * len(labels) for key in
              ("approved_minutes", "coins_issued", "coins_redeemed", "volunteers_registered")}

    # One pass over the period's records for the hours series and both counts.
    is_approved = ServiceRecord.status == RecordStatus.APPROVED
    approved_records = pending = 0
    for label, minutes, approved_n, pending_n in _per_bucket(
            period, ServiceRecord.started_at,
            [func.sum(case((is_approved, ServiceRecord.minutes))), func.count(case((is_approved, 1))),
             func.count(case((ServiceRecord.status == RecordStatus.PENDING, 1)))]):
        series["approved_minutes"][slot[label]] = int(minutes or 0)
        approved_records, pending = approved_records + approved_n, pending + pending_n
    served = (select(ServiceRecord.id).where(ServiceRecord.volunteer_id == User.id, is_approved,
                                             _within(ServiceRecord.started_at, start, end)))
    active = db.session.scalar(select(func.count()).select_from(User).where(served.exists()))

    coins = dict.fromkeys(("issued", "clawed_back", "redeemed", "expired"), 0)
    named = {TxKind.ISSUE: "issued", TxKind.CLAWBACK: "clawed_back", TxKind.REDEEM: "redeemed",
             TxKind.EXPIRE: "expired"}
    charted = {TxKind.ISSUE: "coins_issued", TxKind.REDEEM: "coins_redeemed"}
    for when, kind, amount in _coins_by_bucket(period, [k.value for k in named]):
        coins[named[TxKind(kind)]] += amount
        if kind in charted:
            series[charted[TxKind(kind)]][slot[when]] += amount
    coins["adjusted"] = int(db.session.scalar(select(_adjustments(start, end))))
    coins["outstanding"] = _outstanding_at(min(end, datetime.now(local_zone())))

    volunteer = (select(User.created_at).join(UserRole, UserRole.user_id == User.id)
                 .where(UserRole.role == Role.VOLUNTEER).subquery())
    for label, count in _per_bucket(period, volunteer.c.created_at, [func.count()]):
        series["volunteers_registered"][slot[label]] = int(count)
    registered_total = db.session.scalar(select(func.count()).where(volunteer.c.created_at < end))

    projects = db.session.execute(select(
        func.count(), func.coalesce(func.sum(Project.capacity), 0), func.coalesce(func.sum(Project.confirmed_count), 0)
    ).where(_within(Project.starts_at, start, end), Project.status.in_(HELD))).one()

    return {
        "from": period.first, "to": period.last,
        "volunteers": {"registered": sum(series["volunteers_registered"]), "total": registered_total,
                       "active": active},
        "projects": {"published": projects[0], "capacity": int(projects[1]), "confirmed": int(projects[2]),
                     "fill_rate": _rate(projects[2], projects[1])},
        "hours": {"approved_minutes": sum(series["approved_minutes"]), "approved_records": approved_records,
                  "pending_records": pending},
        "coins": coins,
        "merchants": redemptions_by_merchant(start, end),
        "series": {"unit": period.unit, "labels": labels, **series},
    }


def redemptions_by_merchant(start: datetime, end: datetime) -> list[dict[str, Any]]:
    rows = db.session.execute(
        select(Merchant.id, Merchant.name, func.count(Voucher.id), func.sum(Voucher.coins))
        .join(Voucher, Voucher.merchant_id == Merchant.id)
        .where(Voucher.status == VoucherStatus.REDEEMED, _within(Voucher.redeemed_at, start, end))
        .group_by(Merchant.id, Merchant.name).order_by(func.sum(Voucher.coins).desc(), Merchant.id)).all()
    return [{"merchant_id": mid, "name": name, "vouchers": n, "coins": int(coins)} for mid, name, n, coins in rows]


def _rate(part, whole) -> float:
    return round(float(part) / float(whole), 4) if whole else 0.0


# --- tables -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TableSpec:
    """A report table: the query of its rows (one labelled column per field) and the columns it sorts by."""

    build: Callable[..., Select]  # (period, **options)
    sortable: tuple[str, ...]
    default_sort: str
    default_order: str = "asc"
    # The rows without their joins, where joins along non-null foreign keys cannot change the count.
    rows: Callable[..., Select] | None = None

    def query(self, period: Period, sort: str | None = None, order: str | None = None, **options) -> Select:
        """Sorted by an allowed column (ValueError otherwise), ties broken by id so pages never overlap; `options`
        go to `build` (the participation table's organisation)."""
        sort = sort or self.default_sort
        if sort not in self.sortable:
            raise ValueError(sort)
        stmt = self.build(period, **options)
        column = stmt.selected_columns[sort]
        key = column.desc() if (order or self.default_order) == "desc" else column.asc()
        return stmt.order_by(key, stmt.selected_columns["id"].asc())


def _scalar(stmt: Select, label: str):
    """A correlated sub-select: evaluated only for the rows of the page unless the page sorts by it."""
    return func.coalesce(stmt.scalar_subquery(), 0).label(label)


def _fill_rate(confirmed, capacity):
    return case((capacity > 0, (confirmed * literal(1.0)) / capacity), else_=0.0)


def _no_shows(project_clause):
    return select(func.count()).select_from(Claim).where(project_clause, Claim.status == ClaimStatus.NO_SHOW)


def _projects_stmt() -> Select:
    """One row per project with its figures; callers choose which projects."""
    approved = and_(ServiceRecord.project_id == Project.id, ServiceRecord.status == RecordStatus.APPROVED)
    return (select(
        Project.id.label("id"), Project.title.label("title"), Organization.name.label("organization"),
        Project.category.label("category"), Project.starts_at.label("starts_at"),
        # A published project that has ended reads "ended", as the project list says (已结束), not 已发布.
        case((and_(Project.status == ProjectStatus.PUBLISHED, Project.ends_at <= utcnow()), literal("ended")),
             else_=Project.status).label("status"),
        Project.capacity.label("capacity"), Project.confirmed_count.label("confirmed"),
        _fill_rate(Project.confirmed_count, Project.capacity).label("fill_rate"),
        _scalar(select(func.count(distinct(ServiceRecord.volunteer_id))).where(approved), "volunteers"),
        _scalar(select(func.sum(ServiceRecord.minutes)).where(approved), "approved_minutes"),
        _scalar(_no_shows(Claim.project_id == Project.id), "no_shows"),
    ).join(Organization, Organization.id == Project.organization_id))


def projects_table(period: Period) -> Select:
    start, end = period.bounds
    return _projects_stmt().where(_within(Project.starts_at, start, end), Project.status != ProjectStatus.DRAFT)


def organizations_table(period: Period) -> Select:
    start, end = period.bounds
    held = and_(Project.organization_id == Organization.id, Project.status.in_(HELD),
                _within(Project.starts_at, start, end))
    served = (select(func.count(distinct(ServiceRecord.volunteer_id)))
              .join(Project, Project.id == ServiceRecord.project_id)
              .where(held, ServiceRecord.status == RecordStatus.APPROVED))
    capacity = _scalar(select(func.sum(Project.capacity)).where(held), "capacity")
    confirmed = _scalar(select(func.sum(Project.confirmed_count)).where(held), "confirmed")
    # Members counted in one grouped pass: per organisation, the planner would rescan user_roles each time.
    members = (select(User.organization_id.label("organization_id"), func.count().label("n"))
               .join(UserRole, and_(UserRole.user_id == User.id, UserRole.role == Role.VOLUNTEER))
               .group_by(User.organization_id).subquery())
    return select(
        Organization.id.label("id"), Organization.name.label("name"), Organization.kind.label("kind"),
        func.coalesce(members.c.n, 0).label("members"),
        _scalar(select(func.count()).select_from(Project).where(held), "projects"),
        capacity, confirmed, _fill_rate(confirmed, capacity).label("fill_rate"),
        _scalar(served, "volunteers"),
        _scalar(served.with_only_columns(func.sum(ServiceRecord.minutes)), "approved_minutes"),
        _scalar(select(func.count()).select_from(Claim).join(Project, Project.id == Claim.project_id)
                .where(held, Claim.status == ClaimStatus.NO_SHOW), "no_shows"),
    ).outerjoin(members, members.c.organization_id == Organization.id)


def merchants_table(period: Period) -> Select:
    start, end = period.bounds
    mine = Voucher.merchant_id == Merchant.id
    redeemed = and_(mine, Voucher.status == VoucherStatus.REDEEMED, _within(Voucher.redeemed_at, start, end))
    stmt = select(
        Merchant.id.label("id"), Merchant.name.label("name"), Merchant.category.label("category"),
        _scalar(select(func.count()).select_from(Service).where(Service.merchant_id == Merchant.id,
                                                                Service.active.is_(True)), "services"),
        _scalar(select(func.count()).select_from(Voucher).where(mine, _within(Voucher.issued_at, start, end)),
                "vouchers_issued"),
        _scalar(select(func.count()).select_from(Voucher).where(redeemed), "vouchers_redeemed"),
        _scalar(select(func.sum(Voucher.coins)).where(redeemed), "coins_redeemed"),
        _scalar(select(func.count()).select_from(Voucher).where(mine, Voucher.status == VoucherStatus.ISSUED),
                "vouchers_outstanding"),
    )
    return stmt


def volunteers_table(period: Period) -> Select:
    start, end = period.bounds
    approved = and_(ServiceRecord.volunteer_id == User.id, _within(ServiceRecord.started_at, start, end),
                    ServiceRecord.status == RecordStatus.APPROVED)
    stmt = (select(
        User.id.label("id"), User.volunteer_no.label("volunteer_no"), User.name.label("name"),
        Organization.name.label("organization"),
        _scalar(select(func.sum(ServiceRecord.minutes)).where(approved), "approved_minutes"),
        _scalar(select(func.count()).select_from(ServiceRecord).where(approved), "records"),
        _scalar(select(func.count(distinct(ServiceRecord.project_id))).where(approved), "projects"),
        User.approved_minutes.label("lifetime_minutes"),
        func.coalesce(Account.balance, 0).label("balance"),
    ).join(UserRole, and_(UserRole.user_id == User.id, UserRole.role == Role.VOLUNTEER))
        .outerjoin(Organization, Organization.id == User.organization_id)
        .outerjoin(Account, Account.user_id == User.id))
    return stmt


def records_table(period: Period) -> Select:
    """Service records that started in the period, in any status: the record of who served where and when."""
    start, end = period.bounds
    volunteer = aliased(User)
    stmt = (select(
        ServiceRecord.id.label("id"), ServiceRecord.started_at.label("started_at"),
        ServiceRecord.ended_at.label("ended_at"), volunteer.volunteer_no.label("volunteer_no"),
        volunteer.name.label("volunteer"), Project.title.label("project"), Organization.name.label("organization"),
        ServiceRecord.minutes.label("minutes"), ServiceRecord.source.label("source"),
        ServiceRecord.status.label("status"), ServiceRecord.reviewed_at.label("reviewed_at"),
    ).join(volunteer, volunteer.id == ServiceRecord.volunteer_id)
        .join(Project, Project.id == ServiceRecord.project_id)
        .join(Organization, Organization.id == Project.organization_id)
        .where(_within(ServiceRecord.started_at, start, end)))
    return stmt


def participation_table(period: Period, only: int | None = None) -> Select:
    """两新组织参与社区活动 (SPEC 2.8): per organisation, its current members (by today's membership, not who
    belonged during the period) and what they did in the period: members, party members, activated members;
    members who served (an approved record that started in the period), their approved minutes and the projects
    they served in; coins earned (issued to their accounts less clawbacks) and coins redeemed (the ledger's
    redemptions of their vouchers). Each figure is a GROUP BY: the period's rows summed per person first (a hash
    aggregate over the covering indexes), and only those sums joined to users and summed per organisation —
    joining every ledger entry to its account and user cost 2-3 times as much. `only`: one organisation's row,
    its filter written into every per-person sum (the planner cannot push it through them)."""
    start, end = period.bounds
    member = User.organization_id.isnot(None) if only is None else User.organization_id == only

    def mine(person):
        return true() if only is None else person.in_(select(User.id).where(member))

    def by_organization(per_person, person, *sums):
        """Per-person sums (`person` a user id) summed per organisation of the person."""
        return (select(User.organization_id.label("org"), *sums).join(per_person, person == User.id)
                .where(member).group_by(User.organization_id).subquery())

    roster = (select(User.organization_id.label("org"), func.count().label("members"),
                     func.count(case((User.party_member.is_(True), 1))).label("party_members"),
                     func.count(case((User.pending_activation.is_(False), 1))).label("activated"))
              .where(member).group_by(User.organization_id).subquery())
    approved = (_within(ServiceRecord.started_at, start, end), ServiceRecord.status == RecordStatus.APPROVED)
    served_minutes = (select(ServiceRecord.volunteer_id.label("person"), func.sum(ServiceRecord.minutes).label("n"))
                      .where(*approved, mine(ServiceRecord.volunteer_id)).group_by(ServiceRecord.volunteer_id)
                      .subquery())
    service = by_organization(served_minutes, served_minutes.c.person, func.count().label("served"),
                              func.sum(served_minutes.c.n).label("minutes"))
    # Distinct (organisation, project) pairs by a GROUP BY: count(DISTINCT) would sort every record instead.
    pairs = (select(User.organization_id.label("org"), ServiceRecord.project_id)
             .join(User, User.id == ServiceRecord.volunteer_id).where(*approved, member)
             .group_by(User.organization_id, ServiceRecord.project_id).subquery())
    projects = select(pairs.c.org, func.count().label("projects")).group_by(pairs.c.org).subquery()
    # An issue or a clawback moves coins between the issuance account and one volunteer's: leaving the issuance
    # side out halves the entries to sum.
    issuance = select(Account.id).where(Account.system_code == SystemAccount.ISSUANCE).scalar_subquery()
    per_account = (select(Entry.account_id.label("account"), func.sum(Entry.amount).label("n"))
                   .join(Transaction, Transaction.id == Entry.transaction_id)
                   .where(_within(Transaction.created_at, start, end), Entry.account_id != issuance,
                          Transaction.kind.in_((TxKind.ISSUE.value, TxKind.CLAWBACK.value)),
                          true() if only is None else Entry.account_id.in_(
                              select(Account.id).join(User, User.id == Account.user_id).where(member)))
                   .group_by(Entry.account_id).subquery())
    per_volunteer = (select(Account.user_id.label("person"), per_account.c.n)
                     .join(per_account, per_account.c.account == Account.id)
                     .where(Account.kind == AccountKind.VOLUNTEER).subquery())
    earned = by_organization(per_volunteer, per_volunteer.c.person, func.sum(per_volunteer.c.n).label("coins"))
    spent = (select(Voucher.volunteer_id.label("person"), func.sum(Transaction.amount).label("n"))
             .join(Voucher, and_(Transaction.ref_type == "voucher", Transaction.ref_id == Voucher.id))
             .where(_within(Transaction.created_at, start, end), Transaction.kind == TxKind.REDEEM,
                    mine(Voucher.volunteer_id))
             .group_by(Voucher.volunteer_id).subquery())
    redeemed = by_organization(spent, spent.c.person, func.sum(spent.c.n).label("coins"))
    members = func.coalesce(roster.c.members, 0)
    served = func.coalesce(service.c.served, 0)
    return (select(
        Organization.id.label("id"), Organization.name.label("name"), Organization.kind.label("kind"),
        members.label("members"), func.coalesce(roster.c.party_members, 0).label("party_members"),
        func.coalesce(roster.c.activated, 0).label("activated"), served.label("served"),
        _fill_rate(served, members).label("participation_rate"),
        func.coalesce(service.c.minutes, 0).label("approved_minutes"),
        func.coalesce(projects.c.projects, 0).label("projects"),
        func.coalesce(earned.c.coins, 0).label("coins_earned"),
        func.coalesce(redeemed.c.coins, 0).label("coins_redeemed"),
    ).outerjoin(roster, roster.c.org == Organization.id).outerjoin(service, service.c.org == Organization.id)
        .outerjoin(projects, projects.c.org == Organization.id)
        .outerjoin(earned, earned.c.org == Organization.id).outerjoin(redeemed, redeemed.c.org == Organization.id)
        .where(true() if only is None else Organization.id == only))


def participation_scope(actor: User) -> dict[str, int | None]:
    """The participation table's options for `actor`: every organisation for admins and the coordinators of a
    government organisation (镇党委), only their own for other coordinators. Raises Forbidden for a coordinator
    of none."""
    if actor.has_role(Role.ADMIN) or (actor.organization is not None
                                      and actor.organization.kind == OrgKind.GOVERNMENT):
        return {"only": None}
    if actor.organization_id is None:
        raise Forbidden(_l("您还没有所属组织，请联系管理员将您加入组织。"))
    return {"only": actor.organization_id}


TABLES = {
    "projects": TableSpec(projects_table, ("id", "title", "starts_at", "capacity", "confirmed", "fill_rate",
                                           "volunteers", "approved_minutes", "no_shows"), "starts_at"),
    "organizations": TableSpec(organizations_table, ("id", "name", "members", "projects", "capacity", "confirmed",
                                                     "fill_rate", "volunteers", "approved_minutes", "no_shows"),
                               "approved_minutes", "desc"),
    "merchants": TableSpec(merchants_table, ("id", "name", "services", "vouchers_issued", "vouchers_redeemed",
                                             "coins_redeemed", "vouchers_outstanding"), "coins_redeemed", "desc"),
    "volunteers": TableSpec(volunteers_table, ("id", "volunteer_no", "name", "approved_minutes", "records",
                                               "projects", "lifetime_minutes", "balance"), "volunteer_no"),
    "participation": TableSpec(participation_table, ("id", "name", "members", "party_members", "activated",
                                                     "served", "participation_rate", "approved_minutes",
                                                     "projects", "coins_earned", "coins_redeemed"), "name",
                               rows=lambda period, only=None: select(Organization.id).where(
                                   true() if only is None else Organization.id == only)),
    "records": TableSpec(records_table, ("id", "started_at", "minutes", "status"), "started_at",
                         rows=lambda period: select(ServiceRecord.id).where(
                             _within(ServiceRecord.started_at, *period.bounds))),
}


# --- per-project figures, for the annual review -------------------------------------------------------

@dataclass(frozen=True)
class ProjectFigures:
    approved_minutes: int
    volunteers: int
    capacity: int
    confirmed: int
    fill_rate: float
    no_shows: int


def project_figures(project_ids: Sequence[int]) -> dict[int, ProjectFigures]:
    """Hours, volunteers, fill rate and no-shows of each project, whatever its dates."""
    if not project_ids:
        return {}
    rows = db.session.execute(_projects_stmt().where(Project.id.in_(project_ids))).all()
    return {row.id: ProjectFigures(int(row.approved_minutes), int(row.volunteers), row.capacity, row.confirmed,
                                   _rate(row.confirmed, row.capacity), int(row.no_shows)) for row in rows}
