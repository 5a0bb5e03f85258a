"""Projects and claims (SPEC 2.1). Places are handed out by guarded UPDATEs on the project's counters, so
confirmed claims never exceed capacity and the waitlist never exceeds its capacity, under any concurrency."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, bindparam, case, exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import lazyload, make_transient_to_detached

from credits.auth.audit import record_event
from credits.auth.models import ApiToken, Role, User, UserRole
from credits.auth.services import LIVE_TOKEN, require_own_organization
from credits.database import lock, read_alone
from credits.errors import DomainError, Forbidden, InvalidInput, InvalidState, NotFound
from credits.extensions import db
from credits.hours.models import RecordSource, RecordStatus, ServiceRecord
from credits.notifications.services import notify_many
from credits.observability import CLAIMS, count_on_commit
from credits.projects.models import Claim, ClaimStatus, Project, ProjectStatus
from credits.settings.services import get_policy, policy_from, rule_problem, stored_setting
from credits.timeutil import local_today_range, utcnow

LIVE = (ClaimStatus.CONFIRMED.value, ClaimStatus.WAITLISTED.value)
NO_SHOW_WINDOW = timedelta(days=90)
SUSPENSION = timedelta(days=30)
EDITABLE_WHEN_PUBLISHED = frozenset({"title", "description", "location", "capacity", "waitlist_capacity"})
MOVES_CLAIMANTS = frozenset({"starts_at", "ends_at", "location"})  # a change that each claimant is told of


class NotOpen(DomainError):
    code, message = "not_open", _l("该项目现在不接受认领。")


class ProjectFull(DomainError):
    code, message = "project_full", _l("名额和候补都已满。")


class AlreadyClaimed(DomainError):
    code, message = "already_claimed", _l("您已经认领过这个项目。")


class ClaimLimit(DomainError):
    code, message = "claim_limit", _l("您进行中的认领已达上限。")


class Suspended(DomainError):
    code, message = "suspended", _l("因多次缺席，您的认领资格暂停中。")


class AttendedClaim(InvalidState):
    message = _l("该志愿者已签到或有已通过的时长记录，不能标记缺席。")


# --- permissions -------------------------------------------------------------------------------------


def can_manage(project: Project, user: Any) -> bool:
    """Coordinators manage the projects their own organisation organises."""
    return bool(getattr(user, "is_authenticated", False) and user.has_role(Role.COORDINATOR)
                and user.organization_id is not None and user.organization_id == project.organization_id)


def require_manager(project: Project, actor: User) -> None:
    if not can_manage(project, actor):
        raise Forbidden()


def get_project(project_id: int, *, viewer: Any) -> Project:
    """A project the viewer may see: drafts only to the organiser's coordinators. Raises NotFound."""
    project = db.session.get(Project, project_id)
    if project is None or (project.status == ProjectStatus.DRAFT and not can_manage(project, viewer)):
        raise NotFound(what="project")
    return project


def get_claimable(project_id: int) -> Project:
    """Any existing project, drafts included: claiming one that is not open answers not_open, not 404. Without its
    organisation: a claim does not need it (one join fewer for every winner)."""
    project = db.session.get(Project, project_id, options=[lazyload(Project.organization)])
    if project is None:
        raise NotFound(what="project")
    return project


def get_claim(claim_id: int, *, viewer: Any) -> Claim:
    """A claim its volunteer or the organiser's coordinators may act on. Raises NotFound."""
    claim = db.session.get(Claim, claim_id)
    if claim is None or not (claim.volunteer_id == getattr(viewer, "id", None)
                             or can_manage(claim.project, viewer)):
        raise NotFound(what="claim")
    return claim


def visible_projects(viewer: Any, *, status: str | None = None, category: str | None = None):
    """The ordered query of projects a viewer may list."""
    org_id = viewer.organization_id if getattr(viewer, "is_authenticated", False) and viewer.has_role(
        Role.COORDINATOR) else None
    stmt = select(Project).where((Project.status != ProjectStatus.DRAFT) | (Project.organization_id == org_id))
    if status:
        stmt = stmt.where(Project.status == status)
    elif org_id is None:  # volunteers and visitors browse what they can claim now or soon
        stmt = stmt.where(Project.status == ProjectStatus.PUBLISHED)
    if category:
        stmt = stmt.where(Project.category == category)
    return stmt.order_by(Project.starts_at, Project.id)


def today_clause(now: datetime | None = None):
    """SQL for a project that runs during some part of today, in the town's time zone, and was not cancelled."""
    start, end = local_today_range(now)
    return (Project.starts_at < end) & (Project.ends_at > start) & (Project.status != ProjectStatus.CANCELLED)


def runs_today(project: Project, now: datetime | None = None) -> bool:
    """today_clause for one project already loaded."""
    start, end = local_today_range(now)
    return project.starts_at < end and project.ends_at > start and project.status != ProjectStatus.CANCELLED


def _today_first(today) -> tuple:
    """Order keys putting rows where `today` holds first, earliest start first among them; the rest keep the
    order that follows these keys."""
    return case((today, 0), else_=1), case((today, Project.starts_at))


def desk_projects(coordinator: User, *, status: str | None = None, now: datetime | None = None):
    """The coordinator's organisation's projects, every status: today's first (earliest first, they are the ones
    being run), then the rest latest first."""
    return (visible_projects(coordinator, status=status)
            .where(Project.organization_id == coordinator.organization_id)
            .order_by(None).order_by(*_today_first(today_clause(now)), Project.starts_at.desc(), Project.id.desc()))


# --- projects ----------------------------------------------------------------------------------------


def _check_period(starts_at: datetime, ends_at: datetime) -> None:
    if ends_at <= starts_at:
        raise InvalidInput(fields={"ends_at": [str(_l("结束时间必须晚于开始时间。"))]})


def _check_bounds(project: Project, policy: dict[str, Any]) -> None:
    """SPEC 2.3's bounds on what one coordinator can set up: a credit rule within the policy's rate and block, and
    a start no more than `backdate_days` in the past (hours can only be recorded inside the project's period, so a
    back-dated project is how time that was never served would be filed). Raises InvalidInput on the field."""
    if problem := rule_problem(project.block_minutes, project.coins_per_block, policy):
        field, message = problem
        raise InvalidInput(fields={field: [message]})
    if project.starts_at < utcnow() - timedelta(days=policy["backdate_days"]):
        raise InvalidInput(fields={"starts_at": [str(_l("开始时间不能早于 %(n)s 天前。", n=policy["backdate_days"]))]})


def create_project(data: dict[str, Any], *, actor: User) -> Project:
    """A draft project organised by the coordinator's organisation. Raises Forbidden, InvalidState."""
    if not actor.has_role(Role.COORDINATOR):
        raise Forbidden()
    require_own_organization(actor)
    _check_period(data["starts_at"], data["ends_at"])
    policy = get_policy()
    values = {"waitlist_capacity": data["capacity"], "block_minutes": policy["block_minutes"],
              "coins_per_block": policy["coins_per_block"], "description": ""}
    values.update({k: v for k, v in data.items() if v is not None})
    project = Project(**values, organization_id=actor.organization_id, created_by_id=actor.id,
                      status=ProjectStatus.DRAFT)
    _check_bounds(project, policy)
    db.session.add(project)
    db.session.flush()
    record_event("project.create", project, actor=actor, details={"title": project.title})
    return project


def update_project(project: Project, changes: dict[str, Any], *, actor: User) -> Project:
    """Edit a draft freely; a published project only its texts and capacities. Capacities never drop below
    the places already taken. Raises Forbidden, InvalidState, InvalidInput."""
    require_manager(project, actor)
    lock(project)
    changes = _nulls_as_defaults(project, changes)
    if project.status in (ProjectStatus.CLOSED, ProjectStatus.CANCELLED):
        raise InvalidState(_l("已关闭或已取消的项目不能修改。"))
    if project.status == ProjectStatus.PUBLISHED and set(changes) - EDITABLE_WHEN_PUBLISHED:
        raise InvalidState(_l("项目发布后只能修改标题、介绍、地点和名额。"))
    if changes.get("capacity", project.capacity) < project.confirmed_count:
        raise InvalidInput(fields={"capacity": [str(_l("名额不能少于已确认的人数。"))]})
    if changes.get("waitlist_capacity", project.waitlist_capacity) < project.waitlist_count:
        raise InvalidInput(fields={"waitlist_capacity": [str(_l("候补名额不能少于正在候补的人数。"))]})
    _check_period(changes.get("starts_at", project.starts_at), changes.get("ends_at", project.ends_at))
    moved = {key for key in MOVES_CLAIMANTS & set(changes) if changes[key] != getattr(project, key)}
    for key, value in changes.items():
        setattr(project, key, value)
    if {"starts_at", "block_minutes", "coins_per_block"} & set(changes):
        _check_bounds(project, get_policy())
    db.session.flush()
    if project.status == ProjectStatus.PUBLISHED:
        _fill_places(project, actor=actor)
    if moved:
        notify_many(_live_claimants(project), "project_changed", link=f"/projects/{project.id}",
                    title=project.title, starts_at=project.starts_at, location=project.location)
    record_event("project.update", project, actor=actor, details=_jsonable(changes))
    return project


def _nulls_as_defaults(project: Project, changes: dict[str, Any]) -> dict[str, Any]:
    """null asks for the default, as it does on creation (the columns themselves are NOT NULL)."""
    policy = get_policy()
    defaults = {"waitlist_capacity": changes.get("capacity", project.capacity),
                "block_minutes": policy["block_minutes"], "coins_per_block": policy["coins_per_block"]}
    return {k: defaults[k] if v is None and k in defaults else v for k, v in changes.items()}


def publish(project: Project, *, actor: User, publish_at: datetime | None = None) -> Project:
    """Publish a draft; claims open at publish_at (default: the draft's own, else now)."""
    require_manager(project, actor)
    now = utcnow()
    if project.status != ProjectStatus.DRAFT:
        raise InvalidState(_l("只有草稿可以发布。"))
    if project.ends_at <= now:
        raise InvalidState(_l("项目已结束，不能发布。"))
    _check_bounds(project, get_policy())  # the policy may have tightened since the draft was saved
    project.publish_at = publish_at or project.publish_at or now
    project.status = ProjectStatus.PUBLISHED
    db.session.flush()
    record_event("project.publish", project, actor=actor, details={"publish_at": project.publish_at.isoformat()})
    return project


def close(project: Project, *, actor: User) -> Project:
    """Stop taking claims; existing claims stand."""
    require_manager(project, actor)
    if project.status != ProjectStatus.PUBLISHED:
        raise InvalidState(_l("只有已发布的项目可以关闭。"))
    project.status = ProjectStatus.CLOSED
    db.session.flush()
    record_event("project.close", project, actor=actor)
    return project


def cancel_project(project: Project, *, actor: User) -> Project:
    """Cancel a draft or published project; its live claims are cancelled with it."""
    require_manager(project, actor)
    lock(project)
    if project.status not in (ProjectStatus.DRAFT, ProjectStatus.PUBLISHED):
        raise InvalidState(_l("该项目不能再取消。"))
    now = utcnow()
    claimants = _live_claimants(project)
    cancelled = db.session.execute(
        update(Claim).where(Claim.project_id == project.id, Claim.status.in_(LIVE))
        .values(status=ClaimStatus.CANCELLED, cancelled_at=now)
        .execution_options(synchronize_session=False)).rowcount
    project.status = ProjectStatus.CANCELLED
    project.confirmed_count = 0
    project.waitlist_count = 0
    db.session.flush()
    notify_many(claimants, "project_cancelled", link=f"/projects/{project.id}", title=project.title,
                starts_at=project.starts_at)
    record_event("project.cancel", project, actor=actor, details={"claims_cancelled": cancelled})
    return project


def _live_claimants(project: Project) -> list[User]:
    """The people holding a confirmed or waitlisted claim on the project."""
    return list(db.session.scalars(select(User).join(Claim, Claim.volunteer_id == User.id)
                                   .where(Claim.project_id == project.id, Claim.status.in_(LIVE))
                                   .order_by(Claim.id)))


# --- claims ------------------------------------------------------------------------------------------


_P, _C = Project.__table__.c, Claim.__table__.c


def _full_now(volunteer_id: Any) -> Select:
    """A flash crowd's usual answer, read in one Core statement (no ORM load of the project): whether the project is
    open now and both its counters are full — the rule `_claim` applies to the row it loaded — and whether the
    volunteer holds a live claim on it."""
    return select(
        (_P.status == ProjectStatus.PUBLISHED.value) & (_P.publish_at <= bindparam("now"))
        & (_P.ends_at > bindparam("now"))
        & (_P.confirmed_count >= _P.capacity) & (_P.waitlist_count >= _P.waitlist_capacity),
        exists().where(_C.project_id == _P.id, _C.volunteer_id == volunteer_id,
                       or_(*(_C.status == status for status in LIVE))),
    )


# Built once; only the parameters change. By the volunteer's id (a signed-in user), or by the API's bearer token:
# then the same read also checks the token is live and its user an active volunteer, so a refusal loads nobody.
_FULL_NOW = _full_now(bindparam("volunteer_id")).where(_P.id == bindparam("project_id"))
_T, _U, _R = ApiToken.__table__.c, User.__table__.c, UserRole.__table__.c
_FULL_NOW_FOR_TOKEN = (  # tables, not entities: a Core statement skips the ORM's compile and loading steps
    _full_now(_T.user_id).select_from(ApiToken.__table__)
    .join(User.__table__, (_U.id == _T.user_id) & _U.active)
    .join(Project.__table__, _P.id == bindparam("project_id"))
    .where(*LIVE_TOKEN, exists().where(_R.user_id == _U.id, _R.role == Role.VOLUNTEER.value)))


def _refuse_if_full(row: Any) -> None:
    if row is not None and row[0]:
        refusal = AlreadyClaimed() if row[1] else ProjectFull()
        CLAIMS.labels(refusal.code).inc()
        raise refusal


def refuse_if_full_for_token(project_id: int, hashed_token: str | None) -> None:
    """The API's flash-crowd refusal from the bearer token (`auth.services.bearer_hash`) alone, before the request
    signs anyone in: project_full or already_claimed when the token is a live volunteer's and the project is open
    and full. Anything else — no token, another role, not full — returns, for the whole path to answer."""
    if hashed_token is not None:
        _refuse_if_full(read_alone(_FULL_NOW_FOR_TOKEN, {
            "now": utcnow(), "token_hash": hashed_token, "project_id": project_id}))


def claim_by_id(project_id: int, *, volunteer: User, count_attempt: Callable[[], None] | None = None) -> Claim:
    """The claim of a signed-in volunteer: the page's (the API's does the same from its bearer token,
    `refuse_if_full_for_token`; the races in tests/projects go through both). Once a project is full, nearly every
    request of its flash crowd is a refusal: it is answered from one read of the project's row, before the project
    is loaded, with no lock and no write — project_full, or already_claimed for a volunteer whose first reply was
    lost. Anything else (not full, not open, no such project) takes `claim`'s whole path, which applies
    the same rule again. `count_attempt` (the per-user claim limit) is called once a request is past that refusal:
    the limit guards the write path, and a full project's refusal costs less than counting it."""
    if volunteer.has_role(Role.VOLUNTEER):
        _refuse_if_full(db.session.execute(_FULL_NOW, {"now": utcnow(), "volunteer_id": volunteer.id,
                                                       "project_id": project_id}).one_or_none())
    if count_attempt is not None:
        count_attempt()
    return claim(get_claimable(project_id), volunteer=volunteer)


def claim(project: Project, *, volunteer: User) -> Claim:
    """Claim a place: confirmed while places remain, else waitlisted while the waitlist has room.

    Raises NotOpen, ProjectFull, AlreadyClaimed, ClaimLimit, Suspended, Forbidden.
    """
    try:
        new = _claim(project, volunteer)
    except DomainError as refusal:
        CLAIMS.labels(refusal.code).inc()
        raise
    count_on_commit(db.session, CLAIMS, outcome=new.status)
    return new


def _claim(project: Project, volunteer: User) -> Claim:
    if not volunteer.has_role(Role.VOLUNTEER):
        raise Forbidden()
    now = utcnow()
    if not project.is_open(now):
        upcoming = project.status == ProjectStatus.PUBLISHED and project.publish_at and project.publish_at > now
        raise NotOpen(opens_at=project.publish_at.isoformat() if upcoming else None)
    # In a flash crowd most requests lose; refuse them from the row as read, before any lock or write. A retry
    # whose first reply was lost must still learn that it holds a place: one indexed lookup, no lock.
    if project.confirmed_count >= project.capacity and project.waitlist_count >= project.waitlist_capacity:
        raise AlreadyClaimed() if _holds_claim(project, volunteer) else ProjectFull()
    lock(volunteer, reread=False)  # one volunteer's requests, one at a time; decided from their claims below
    _check_standing(project, volunteer, now)
    new = _save(_take_place(project, volunteer, now), project)
    db.session.expire(project, ["confirmed_count", "waitlist_count", "waitlist_seq"])
    record_event("claim.create", new, actor=volunteer, details={"project_id": project.id, "status": new.status})
    return new


def _check_standing(project: Project, volunteer: User, now: datetime) -> None:
    """Refuse a volunteer who holds a claim on the project already, is suspended, or is at their active claims'
    limit: from one read (`_STANDING`)."""
    holds, active, recent_no_shows, *settings = db.session.execute(_STANDING, {
        "project_id": project.id, "volunteer_id": volunteer.id, "now": now,
        "no_shows_since": now - NO_SHOW_WINDOW - SUSPENSION}).one()
    if holds:
        raise AlreadyClaimed()
    policy = policy_from((key, value) for key, value in zip(_RULES, settings, strict=True) if value is not None)
    # Fewer no-shows than the limit within the window suspended_until reads cannot suspend anyone.
    if recent_no_shows >= policy["no_show_limit"] and (until := suspended_until(volunteer, now, policy)):
        raise Suspended(until=until.isoformat())
    if active >= policy["max_active_claims"]:
        raise ClaimLimit()


def _save(new: Claim, project: Project) -> Claim:
    """INSERT the claim; the row as written joins the session as if loaded, so the 201 reads it (and names the
    project) without a query. No savepoint: the place taken stays locked until commit, so every round trip here
    costs the whole crowd; a refusal rolls back the whole unit of work, the place with it. As a loaded row, a
    rollback leaves it in the session (expired): a replay of the unit of work in the same session could meet it
    again on SQLite, which reuses a rolled-back id — so nothing that can fail with a retryable conflict may follow
    this in the claim (what does, the audit INSERT and the commit, cannot)."""
    try:
        new.id = db.session.execute(_INSERT_CLAIM, {
            column: getattr(new, column) for column in _CLAIM_COLUMNS}).scalar_one()
    except IntegrityError as exc:  # the same volunteer's other request won (double tap)
        raise AlreadyClaimed() from exc
    new.project = project
    make_transient_to_detached(new)
    db.session.add(new)
    return new


# What a claim is decided on once the volunteer is locked, in one Core statement: whether they hold a live claim on
# the project, their active claims (active_claims), their no-shows within the window suspended_until reads, and the
# two settings of those rules.
_RULES = ("no_show_limit", "max_active_claims")
_STANDING = select(
    exists().where(_C.project_id == bindparam("project_id"), _C.volunteer_id == bindparam("volunteer_id"),
                   or_(*(_C.status == status for status in LIVE))),
    select(func.count()).select_from(Claim.__table__.join(Project.__table__, _P.id == _C.project_id))
    .where(_C.volunteer_id == bindparam("volunteer_id"), _C.status == ClaimStatus.CONFIRMED.value,
           _P.ends_at > bindparam("now")).scalar_subquery(),
    select(func.count()).select_from(Claim.__table__)
    .where(_C.volunteer_id == bindparam("volunteer_id"), _C.status == ClaimStatus.NO_SHOW.value,
           _C.no_show_at > bindparam("no_shows_since")).scalar_subquery(),
    *(stored_setting(key) for key in _RULES),
)


def _holds_claim(project: Project, volunteer: User) -> bool:
    return db.session.scalar(select(Claim.id).where(Claim.project_id == project.id, Claim.volunteer_id == volunteer.id,
                                                    Claim.status.in_(LIVE))) is not None


# The winners' statements, built once (only their parameters change) and on the tables: every winner holds the
# project's row from the first UPDATE to commit, and building an ORM statement cost more than running it.
_OPEN_NOW = ((_P.id == bindparam("project_id")) & (_P.status == ProjectStatus.PUBLISHED.value)
             & (_P.publish_at <= bindparam("now")) & (_P.ends_at > bindparam("now")))
_TAKE_CONFIRMED = (update(Project.__table__).where(_OPEN_NOW, _P.confirmed_count < _P.capacity)
                   .values(confirmed_count=_P.confirmed_count + 1))
_TAKE_WAITLISTED = (update(Project.__table__).where(_OPEN_NOW, _P.waitlist_count < _P.waitlist_capacity)
                    .values(waitlist_count=_P.waitlist_count + 1, waitlist_seq=_P.waitlist_seq + 1)
                    .returning(_P.waitlist_seq))
_CLAIM_COLUMNS = ("project_id", "volunteer_id", "status", "waitlist_seq", "created_at", "confirmed_at",
                  "cancelled_at", "no_show_at")
_INSERT_CLAIM = insert(Claim.__table__).returning(_C.id)


def _take_place(project: Project, volunteer: User, now: datetime) -> Claim:
    """The guarded UPDATEs: each succeeds only while its counter is below capacity. The claim they make, unsaved."""
    params = {"project_id": project.id, "now": now}
    place = {"project_id": project.id, "volunteer_id": volunteer.id, "created_at": now, "cancelled_at": None,
             "no_show_at": None}
    if db.session.execute(_TAKE_CONFIRMED, params).rowcount == 1:
        return Claim(**place, status=ClaimStatus.CONFIRMED.value, confirmed_at=now, waitlist_seq=None)
    seq = db.session.execute(_TAKE_WAITLISTED, params).scalar_one_or_none()
    if seq is None:
        raise ProjectFull()
    return Claim(**place, status=ClaimStatus.WAITLISTED.value, confirmed_at=None, waitlist_seq=seq)


def cancel_claim(claim: Claim, *, actor: User) -> Claim:
    """The volunteer cancels before the project starts; the first on the waitlist takes the place."""
    if claim.volunteer_id != actor.id:
        raise Forbidden()
    project = claim.project
    lock(project)
    db.session.refresh(claim)
    if claim.status not in LIVE:
        raise InvalidState(_l("该认领已取消或已结束。"))
    if utcnow() >= project.starts_at:
        raise InvalidState(_l("项目已开始，不能取消认领。"))
    counter = Project.confirmed_count if claim.status == ClaimStatus.CONFIRMED else Project.waitlist_count
    db.session.execute(update(Project).where(Project.id == project.id).values({counter: counter - 1})
                       .execution_options(synchronize_session=False))
    claim.status = ClaimStatus.CANCELLED
    claim.cancelled_at = utcnow()
    db.session.flush()
    db.session.refresh(project)
    if project.status == ProjectStatus.PUBLISHED:
        _fill_places(project, actor=actor)
    record_event("claim.cancel", claim, actor=actor)
    return claim


def mark_no_show(claim: Claim, *, actor: User) -> Claim:
    """The organiser's coordinator marks a confirmed volunteer absent once the project has started; never one who
    checked in or has approved hours on it (AttendedClaim): a no-show counts towards suspension."""
    require_manager(claim.project, actor)
    # The volunteer's lock is the one check-in takes: a check-in racing this either lands first and is seen
    # below, or finds the claim no longer confirmed.
    lock(claim.volunteer)
    db.session.refresh(claim)
    if claim.status != ClaimStatus.CONFIRMED:
        raise InvalidState(_l("只有已确认的认领可以标记缺席。"))
    if utcnow() < claim.project.starts_at:
        raise InvalidState(_l("项目开始后才能标记缺席。"))
    if attended(claim):
        raise AttendedClaim()
    claim.status = ClaimStatus.NO_SHOW
    claim.no_show_at = utcnow()
    db.session.flush()
    record_event("claim.no_show", claim, actor=actor)
    return claim


def attended(claim: Claim) -> bool:
    """Whether the volunteer showed up for this claim: a check-in (open, closed or lapsed, unless rejected or
    revoked on review) or an approved record."""
    shown_up = ((ServiceRecord.source == RecordSource.CHECKIN)
                & ServiceRecord.status.not_in((RecordStatus.REJECTED, RecordStatus.REVOKED)))
    approved = ServiceRecord.status.in_((RecordStatus.APPROVED, RecordStatus.AWAITING_SECOND_APPROVAL))
    return db.session.scalar(select(ServiceRecord.id).where(
        ServiceRecord.claim_id == claim.id, shown_up | approved).limit(1)) is not None


def presence(claims: list[Claim]) -> dict[int, tuple[str, datetime]]:
    """What the roster shows of each claim's attendance, from its latest check-in or approved record:
    ("in", checked in at) for a check-in not checked out, ("out", checked out at) after, ("hours", ended at) for
    approved hours filed by hand. Claims with neither are absent from the answer."""
    if not claims:
        return {}
    shown_up = ((ServiceRecord.source == RecordSource.CHECKIN)
                & ServiceRecord.status.not_in((RecordStatus.REJECTED, RecordStatus.REVOKED)))
    approved = ServiceRecord.status.in_((RecordStatus.APPROVED, RecordStatus.AWAITING_SECOND_APPROVAL))
    records = db.session.scalars(select(ServiceRecord).where(
        ServiceRecord.claim_id.in_([c.id for c in claims]), shown_up | approved)
        .order_by(ServiceRecord.started_at, ServiceRecord.id))
    seen: dict[int, tuple[str, datetime]] = {}
    for r in records:
        if r.source == RecordSource.MANUAL:
            seen[r.claim_id] = ("hours", r.ended_at)
        elif r.status in (RecordStatus.OPEN, RecordStatus.LAPSED):
            seen[r.claim_id] = ("in", r.started_at)
        else:
            seen[r.claim_id] = ("out", r.ended_at or r.started_at)
    return seen


def _fill_places(project: Project, *, actor: User) -> int:
    """Promote waitlisted claims, first come first served, into free places. Caller holds the project lock.

    A volunteer already at `max_active_claims` is passed over and keeps waiting (promoted by a later free place once
    below the cap); the next in line is promoted instead. Each candidate's row is locked before their claims are
    counted, as claim() does, so a claim of theirs elsewhere at the same moment cannot take them past the cap."""
    free = project.capacity - project.confirmed_count
    if free <= 0 or project.waitlist_count == 0:
        return 0
    waiting = db.session.scalars(
        select(Claim).where(Claim.project_id == project.id, Claim.status == ClaimStatus.WAITLISTED)
        .order_by(Claim.waitlist_seq)).all()
    now, cap = utcnow(), get_policy()["max_active_claims"]
    promoted: list[Claim] = []
    for candidate in waiting:
        if len(promoted) == free:
            break
        lock(candidate.volunteer)
        if active_claims(candidate.volunteer, now) >= cap:
            continue
        candidate.status = ClaimStatus.CONFIRMED
        candidate.confirmed_at = now
        db.session.flush()
        promoted.append(candidate)
        record_event("claim.promote", candidate, actor=actor, details={"project_id": project.id})
    n = len(promoted)
    notify_many([candidate.volunteer for candidate in promoted], "promotion", link="/me/claims",
                title=project.title, starts_at=project.starts_at, location=project.location)
    if n:
        db.session.execute(update(Project).where(Project.id == project.id)
                           .values(confirmed_count=Project.confirmed_count + n,
                                   waitlist_count=Project.waitlist_count - n)
                           .execution_options(synchronize_session=False))
        db.session.flush()
        db.session.refresh(project)
    return n


def active_claims(volunteer: User, now: datetime) -> int:
    return db.session.scalar(
        select(func.count()).select_from(Claim).join(Project)
        .where(Claim.volunteer_id == volunteer.id, Claim.status == ClaimStatus.CONFIRMED,
               Project.ends_at > now)) or 0


def suspended_until(volunteer: User, now: datetime, policy: dict[str, Any] | None = None) -> datetime | None:
    """`no_show_limit` no-shows within 90 days suspend claiming for 30 days after the last of them."""
    limit = (policy or get_policy())["no_show_limit"]
    times = db.session.scalars(
        select(Claim.no_show_at).where(Claim.volunteer_id == volunteer.id, Claim.status == ClaimStatus.NO_SHOW,
                                       Claim.no_show_at > now - NO_SHOW_WINDOW - SUSPENSION)
        .order_by(Claim.no_show_at.desc())).all()
    # Not only the latest `limit`: a later no-show must not cut short a suspension an earlier run started.
    for i in range(len(times) - limit + 1):
        if times[i] - times[i + limit - 1] <= NO_SHOW_WINDOW:
            until = times[i] + SUSPENSION
            return until if now < until else None
    return None


def waitlist_position(claim: Claim) -> int | None:
    if claim.status != ClaimStatus.WAITLISTED:
        return None
    return db.session.scalar(
        select(func.count()).select_from(Claim)
        .where(Claim.project_id == claim.project_id, Claim.status == ClaimStatus.WAITLISTED,
               Claim.waitlist_seq <= claim.waitlist_seq))


def roster(project: Project, *, actor: User):
    """The ordered query of a project's claims: confirmed in order, then the waitlist, then the rest."""
    require_manager(project, actor)
    group = case({ClaimStatus.CONFIRMED.value: 0, ClaimStatus.WAITLISTED.value: 1,
                  ClaimStatus.NO_SHOW.value: 2}, value=Claim.status, else_=3)
    return (select(Claim).where(Claim.project_id == project.id)
            .order_by(group, Claim.confirmed_at, Claim.waitlist_seq, Claim.id))


def my_claims(volunteer: User, *, status: str | None = None, today_first: bool = False,
              now: datetime | None = None):
    """The volunteer's claims, latest project first; with today_first, confirmed claims on projects running today
    (the ones to check in to) come before them."""
    stmt = select(Claim).join(Project).where(Claim.volunteer_id == volunteer.id)
    if status:
        stmt = stmt.where(Claim.status == status)
    first = _today_first(today_clause(now) & (Claim.status == ClaimStatus.CONFIRMED)) if today_first else ()
    return stmt.order_by(*first, Project.starts_at.desc(), Claim.id.desc())


def _jsonable(changes: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in changes.items()}


# --- the home page ------------------------------------------------------------------------------------------


def next_confirmed(volunteer: User, now: datetime) -> Claim | None:
    """The volunteer's confirmed claim on the project that starts soonest and has not ended."""
    return db.session.scalars(
        select(Claim).join(Project).where(Claim.volunteer_id == volunteer.id, Claim.status == ClaimStatus.CONFIRMED,
                                          Project.status != ProjectStatus.CANCELLED, Project.ends_at > now)
        .order_by(Project.starts_at, Project.id).limit(1)).first()


def opening_soon(now: datetime, limit: int):
    """Published projects whose claiming has not opened yet, soonest opening first."""
    return db.session.scalars(
        select(Project).where(Project.status == ProjectStatus.PUBLISHED, Project.publish_at > now,
                              Project.ends_at > now)
        .order_by(Project.publish_at, Project.id).limit(limit)).all()


def open_now(now: datetime, limit: int):
    """Projects open for claims now, soonest first."""
    return db.session.scalars(
        select(Project).where(Project.status == ProjectStatus.PUBLISHED, Project.publish_at <= now,
                              Project.ends_at > now)
        .order_by(Project.starts_at, Project.id).limit(limit)).all()
