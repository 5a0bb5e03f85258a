"""Accounts, sign-in, tokens and roles. Functions flush, never commit; they raise DomainErrors."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from credits.auth.audit import record_event
from credits.auth.models import ApiToken, Organization, Role, User, UserRole
from credits.auth.passwords import check_password, hash_password, needs_rehash
from credits.database import lock
from credits.errors import DomainError, Forbidden, InvalidInput, InvalidState, NotFound, Unauthorized
from credits.extensions import db
from credits.timeutil import utcnow

TOKEN_LIFETIME = timedelta(days=30)
STAR_HOURS = (100, 300, 600, 1000, 1500)


class PhoneTaken(DomainError):
    code, status, message = "phone_taken", 409, _l("该手机号已注册。")


class InvalidCredentials(Unauthorized):
    message = _l("手机号或密码不正确。")


class AccountNotActivated(InvalidCredentials):
    """An account a roster import created, whose person has not yet set a password through their invitation link.
    Counted as a failed sign-in; it tells only what registering the phone would (that it is taken), and what to do."""

    code = "not_activated"
    message = _l("账号未激活，请打开邀请短信中的链接")


class NoOrganization(InvalidState):
    """A coordinator whose account names no organisation, on a page that acts for one."""

    message = _l("您的账号还没有所属组织，暂时不能使用此功能。请联系管理员：在“管理 › 组织”中建立您的组织，"
                 "再在“管理 › 用户”中把您的账号设为该组织的协调员。")


def require_own_organization(actor: User) -> Organization:
    """The coordinator's organisation. Raises NoOrganization."""
    if actor.organization_id is None:
        raise NoOrganization()
    return actor.organization


class OrganizationNameTaken(DomainError):
    code, status, message = "name_taken", 409, _l("已有同名组织。")


def star_level(approved_minutes: int) -> int:
    """星级: one star at 100 h, then 300, 600, 1000 and 1500 h."""
    return sum(approved_minutes >= hours * 60 for hours in STAR_HOURS)


def get_organization(org_id: int | None) -> Organization | None:
    if org_id is None:
        return None
    org = db.session.get(Organization, org_id)
    if org is None:
        raise InvalidInput(fields={"organization_id": [str(_l("没有这个组织。"))]})
    return org


def create_user(*, phone: str, name: str, password: str, roles: Iterable[str] = (Role.VOLUNTEER,),
                organization_id: int | None = None, actor: User | None = None) -> User:
    """Create a user with the given roles. Raises PhoneTaken (also when a concurrent request won)."""
    organization = get_organization(organization_id)
    if db.session.scalar(select(User.id).where(User.phone == phone)) is not None:
        raise PhoneTaken()
    user = User(phone=phone, name=name, password_hash=hash_password(password), organization=organization,
                role_rows=[UserRole(role=Role(r).value) for r in set(roles)])
    try:
        with db.session.begin_nested():
            db.session.add(user)
            db.session.flush()
    except IntegrityError as exc:
        raise PhoneTaken() from exc
    user.volunteer_no = f"FC{user.id:07d}"
    record_event("user.create", user, actor=actor or user, details={"roles": user.roles})
    db.session.flush()
    return user


def register(*, phone: str, name: str, password: str, organization_id: int | None = None) -> User:
    """Someone signs themselves up as a volunteer. An organisation they name is only a request to join it, which
    its coordinators confirm (SPEC 2.8): until then the user is no member and counts in none of its figures.
    Raises InvalidInput (no such organisation), PhoneTaken."""
    organization = get_organization(organization_id)
    user = create_user(phone=phone, name=name, password=password)
    if organization is not None:
        request_organization(user, organization)
    return user


def request_organization(user: User, organization: Organization) -> None:
    """Ask to join `organization`; a later request replaces an earlier one."""
    user.requested_organization = organization
    user.organization_requested_at = utcnow()
    record_event("user.organization_request", user, actor=user, details={"organization_id": organization.id})
    db.session.flush()


def can_manage_members(actor: User, organization: Organization) -> bool:
    """The organisation's own coordinators, and admins."""
    return bool(getattr(actor, "is_authenticated", False)) and (
        actor.has_role(Role.ADMIN)
        or (actor.has_role(Role.COORDINATOR) and actor.organization_id == organization.id))


def require_member_manager(organization: Organization, *, actor: User) -> None:
    if not can_manage_members(actor, organization):
        raise Forbidden()


def pending_requests(organization: Organization, *, actor: User) -> Select:
    """The users waiting to join `organization`, oldest request first. Raises Forbidden."""
    require_member_manager(organization, actor=actor)
    return (select(User).options(joinedload(User.organization))
            .where(User.requested_organization_id == organization.id)
            .order_by(User.organization_requested_at, User.id))


def _pending_requester(organization: Organization, user_id: int, *, actor: User) -> User:
    require_member_manager(organization, actor=actor)
    user = db.session.get(User, user_id)
    if user is not None:
        lock(user)  # a confirm and a decline racing: the second finds no request
    if user is None or user.requested_organization_id != organization.id:
        raise NotFound(_l("该用户没有待确认的加入申请。"))
    return user


def _clear_request(user: User) -> None:
    user.requested_organization = None
    user.organization_requested_at = None


def confirm_request(organization: Organization, user_id: int, *, actor: User) -> User:
    """The requester becomes a member of `organization`, leaving any other: a member of one organisation moves
    to another by asking to join it (their consent) and its coordinators confirming (the new organisation's).
    Raises Forbidden, NotFound."""
    user = _pending_requester(organization, user_id, actor=actor)
    previous = user.organization_id
    user.organization = organization
    _clear_request(user)
    db.session.flush()
    record_event("user.organization_confirm", user, actor=actor,
                 details={"organization_id": organization.id, "previous_organization_id": previous})
    if previous is not None and previous != organization.id:
        # A move: the person asked, the new organisation's coordinator confirmed (SPEC 2.8's two consents).
        record_event("user.organization_move", user, actor=actor,
                     details={"from": previous, "to": organization.id})
    return user


def decline_request(organization: Organization, user_id: int, *, actor: User) -> User:
    """The request is dropped; the user's membership, if any, stays as it was. Raises Forbidden, NotFound."""
    user = _pending_requester(organization, user_id, actor=actor)
    _clear_request(user)
    db.session.flush()
    record_event("user.organization_decline", user, actor=actor, details={"organization_id": organization.id})
    return user


def get_organization_or_404(org_id: int) -> Organization:
    org = db.session.get(Organization, org_id)
    if org is None:
        raise NotFound(what="organization")
    return org


def authenticate(phone: str, password: str) -> User:
    """The active user with this phone and password. Raises InvalidCredentials, which never says which was
    wrong (and costs the same time either way)."""
    user = db.session.scalars(select(User).where(User.phone == phone)).one_or_none()
    matches = check_password(user.password_hash if user else None, password)
    if user is not None and user.pending_activation and user.is_active:
        raise AccountNotActivated()
    if not matches or not user or not user.is_active:
        raise InvalidCredentials()
    if needs_rehash(user.password_hash):  # made with parameters since replaced: the password is at hand now
        user.password_hash = hash_password(password)
        db.session.flush()
    return user


def token_hash(raw: str) -> str:
    """What is stored of a secret token (API, activation link, calendar feed): its SHA-256, never the token."""
    return hashlib.sha256(raw.encode()).hexdigest()


def issue_token(user: User) -> tuple[str, ApiToken]:
    """A new bearer token; only its hash is stored, so the raw value is returned once, here."""
    raw = secrets.token_urlsafe(32)
    token = ApiToken(user=user, token_hash=token_hash(raw), expires_at=utcnow() + TOKEN_LIFETIME)
    db.session.add(token)
    db.session.flush()
    record_event("token.issue", token, actor=user)
    return raw, token


# A live token, as the WHERE of a statement with the parameters token_hash and now (the table's columns, so a Core
# statement built on it stays Core).
_T = ApiToken.__table__.c
LIVE_TOKEN = (_T.token_hash == bindparam("token_hash"), _T.revoked_at.is_(None), _T.expires_at > bindparam("now"))
# Every API request runs this: one query for the token, its user and the user's roles, built once.
_LIVE_TOKEN = select(ApiToken).options(joinedload(ApiToken.user).joinedload(User.role_rows)).where(*LIVE_TOKEN)


def bearer_hash(header: str | None) -> str | None:
    """The stored form (token_hash) of the token an `Authorization: Bearer …` header carries, if it carries one."""
    if not header or not header.startswith("Bearer "):
        return None
    return token_hash(header[7:].strip())


def token_from_header(header: str | None) -> ApiToken | None:
    """The live token named by an `Authorization: Bearer …` header, if any."""
    hashed = bearer_hash(header)
    if hashed is None:
        return None
    token = db.session.scalars(_LIVE_TOKEN, {"token_hash": hashed, "now": utcnow()}).unique().one_or_none()
    if token is None or not token.user.is_active:
        return None
    return token


def revoke_token(token: ApiToken, *, actor: User) -> None:
    token.revoked_at = utcnow()
    record_event("token.revoke", token, actor=actor)
    db.session.flush()


def end_all_sessions(user: User, *, actor: User, reason: str) -> None:
    """Sign the user out everywhere: every session and remember cookie, and every API token."""
    db.session.execute(update(User).where(User.id == user.id)
                       .values(session_version=User.session_version + 1)
                       .execution_options(synchronize_session=False))
    db.session.execute(update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
                       .values(revoked_at=utcnow()).execution_options(synchronize_session=False))
    db.session.refresh(user)
    record_event("user.sessions_ended", user, actor=actor, details={"reason": reason})
    db.session.flush()


def change_password(user: User, *, current_password: str, new_password: str) -> None:
    """Raises InvalidCredentials when the current password is wrong."""
    if not check_password(user.password_hash, current_password):
        raise InvalidInput(fields={"current_password": [str(_l("当前密码不正确。"))]})
    set_password(user, new_password, actor=user)


def set_password(user: User, new_password: str, *, actor: User) -> None:
    user.password_hash = hash_password(new_password)
    user.password_changed_at = utcnow()
    db.session.flush()
    record_event("user.password_change", user, actor=actor)
    end_all_sessions(user, actor=actor, reason="password_change")


def set_large_mode(user: User, on: bool, *, actor: User) -> None:
    """Switch 长辈模式 on or off for the account; a switch to what it already is records nothing."""
    if user.large_mode == on:
        return
    user.large_mode = on
    record_event("user.large_mode", user, actor=actor, details={"on": on})
    db.session.flush()


def load_session_user(session_id: str) -> User | None:
    """Flask-Login's loader: the id carries the session version, so old cookies stop working."""
    user_id, _, version = session_id.partition(".")
    if not (user_id.isdigit() and version.isdigit()):
        return None
    user = db.session.get(User, int(user_id))
    if user is None or user.session_version != int(version) or not user.is_active:
        return None
    return user


def require_admin(actor: User) -> None:
    if not actor.has_role(Role.ADMIN):
        raise Forbidden()


def update_user(user: User, *, actor: User, roles: Iterable[str] | None = None, active: bool | None = None,
                organization_id: int | None | bool = False, name: str | None = None) -> User:
    """An admin changes a user's roles, organisation, name or active flag. Deactivating ends every session.
    Admins cannot remove their own admin role or deactivate themselves, so the town keeps an admin."""
    require_admin(actor)
    changes: dict = {}
    if roles is not None:
        wanted = {Role(r).value for r in roles}
        if user.id == actor.id and Role.ADMIN not in wanted:
            raise Forbidden(_l("不能取消自己的管理员角色。"))
        if wanted != set(user.roles):
            user.role_rows = [row for row in user.role_rows if row.role in wanted] + [
                UserRole(role=r) for r in wanted - set(user.roles)]
            changes["roles"] = sorted(wanted)
    if organization_id is not False:
        organization = get_organization(organization_id)  # type: ignore[arg-type]
        if organization_id != user.organization_id:
            user.organization = organization
            changes["organization_id"] = organization_id
    if name is not None and name != user.name:
        user.name = name
        changes["name"] = name
    if active is not None and active != user.is_active_user:
        if user.id == actor.id and not active:
            raise Forbidden(_l("不能停用自己的账号。"))
        user.is_active_user = active
        changes["active"] = active
    db.session.flush()
    if changes:
        record_event("user.update", user, actor=actor, details=changes)
    if changes.get("active") is False:
        end_all_sessions(user, actor=actor, reason="deactivated")
    return user


def create_organization(*, name: str, kind: str, actor: User) -> Organization:
    require_admin(actor)
    if db.session.scalar(select(Organization.id).where(Organization.name == name)) is not None:
        raise OrganizationNameTaken()
    org = Organization(name=name, kind=kind)
    db.session.add(org)
    db.session.flush()
    record_event("organization.create", org, actor=actor, details={"name": name, "kind": kind})
    return org


def update_organization(org: Organization, *, name: str, kind: str, actor: User) -> Organization:
    require_admin(actor)
    clash = db.session.scalar(
        select(Organization.id).where(Organization.name == name, Organization.id != org.id))
    if clash is not None:
        raise OrganizationNameTaken()
    org.name, org.kind = name, kind
    db.session.flush()
    record_event("organization.update", org, actor=actor, details={"name": name, "kind": kind})
    return org


