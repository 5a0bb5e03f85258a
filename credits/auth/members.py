"""An organisation's members: the list its coordinators manage, and removing a member (SPEC 2.8).

Moving to another organisation is the join-request flow of services.py: the person asks, the new organisation's
coordinators confirm. Functions flush, never commit; they raise DomainErrors."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, case, distinct, func, or_, select

from credits.auth.audit import record_event
from credits.auth.models import Organization, User
from credits.auth.services import get_organization, request_organization, require_member_manager
from credits.database import lock
from credits.errors import Forbidden, InvalidInput, NotFound
from credits.extensions import db
from credits.hours.models import ServiceRecord
from credits.projects.models import Claim, ClaimStatus


def _latest(a, b):
    """The later of two nullable timestamps, written the same way for SQLite and PostgreSQL (whose max/greatest
    treat NULL differently)."""
    return case((a.is_(None), b), (b.is_(None), a), (a >= b, a), else_=b)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def members(organization: Organization, *, actor: User, q: str | None = None) -> Select:
    """The organisation's members with their participation, by name: lifetime approved minutes, projects joined
    (claims not cancelled) and last activity (the latest claim or service record, a check-in included). The
    figures are correlated sub-selects, so only the page's rows pay for them. Raises Forbidden."""
    require_member_manager(organization, actor=actor)
    mine = Claim.volunteer_id == User.id
    last_claim = select(func.max(Claim.created_at)).where(mine).scalar_subquery()
    last_record = (select(func.max(ServiceRecord.created_at)).where(ServiceRecord.volunteer_id == User.id)
                   .scalar_subquery())
    stmt = (select(
        User.id.label("id"), User.name.label("name"), User.phone.label("phone"),
        User.party_member.label("party_member"), User.volunteer_no.label("volunteer_no"),
        User.approved_minutes.label("approved_minutes"), User.pending_activation.label("pending_activation"),
        func.coalesce(select(func.count(distinct(Claim.project_id)))
                      .where(mine, Claim.status != ClaimStatus.CANCELLED).scalar_subquery(), 0).label("projects"),
        _latest(last_claim, last_record).label("last_activity_at"),
    ).where(User.organization_id == organization.id).order_by(User.name, User.id))
    if q:
        pattern = f"%{_escape_like(q.strip())}%"
        stmt = stmt.where(or_(User.name.like(pattern, escape="\\"), User.phone.like(pattern, escape="\\")))
    return stmt


def remove_member(organization: Organization, user_id: int, *, actor: User) -> User:
    """The user stops being a member: their hours, coins, claims and records stay theirs, only the membership
    ends (they may ask to join any organisation again). Nobody removes themselves here: a coordinator doing so
    would lose the right to manage the organisation mid-task; an admin changes their own organisation on the
    user page. Raises Forbidden, NotFound (not a member, also when a move or another removal came first)."""
    require_member_manager(organization, actor=actor)
    user = db.session.get(User, user_id)
    if user is not None:
        lock(user)  # a removal racing a move to another organisation: the second sees what the first left
    if user is None or user.organization_id != organization.id:
        raise NotFound(_l("该用户不是本组织成员。"))
    if user.id == actor.id:
        raise Forbidden(_l("不能将自己移出本组织，请联系管理员。"))
    user.organization = None
    db.session.flush()
    record_event("organization.member_remove", user, actor=actor, details={"organization_id": organization.id})
    return user


def ask_to_join(user: User, organization_id: int) -> Organization:
    """The signed-in person asks to join an organisation: from none, or to move from their own (which they stay
    a member of until the new one's coordinators confirm). Raises InvalidInput (no such organisation, or theirs)."""
    organization = get_organization(organization_id)
    if user.organization_id == organization.id:
        raise InvalidInput(fields={"organization_id": [str(_l("您已是该组织成员。"))]})
    request_organization(user, organization)
    return organization
