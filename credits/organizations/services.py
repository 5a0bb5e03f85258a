"""Roster import (preview, then confirm), activation of imported accounts, invitations to join. Functions flush,
never commit; they raise DomainErrors."""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from datetime import timedelta

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update

from credits.auth.audit import record_event, record_events
from credits.auth.models import Organization, Role, User, UserRole
from credits.auth.passwords import hash_password, password_problem
from credits.auth.services import get_organization_or_404, require_member_manager, token_hash
from credits.database import lock
from credits.errors import DomainError, InvalidInput, InvalidState, NotFound
from credits.extensions import db
from credits.fields import is_phone, normalize_phone
from credits.notifications.services import notify_many, send_texts
from credits.organizations.models import ActivationToken, MemberInvitation, RosterImport
from credits.organizations.parsing import HEADERS, read_roster
from credits.timeutil import utcnow

ACTIVATION_LIFETIME = timedelta(days=7)
MAX_NAME = 50
MAX_NOTE = 200
# Never a valid argon2 hash: no password matches it, so the account cannot be signed into before activation.
UNUSABLE_PASSWORD = "!pending-activation"
PARTY_VALUES = {"是": True, "否": False, "y": True, "n": False, "yes": True, "no": False, "1": True, "0": False,
                "true": True, "false": False, "党员": True, "是党员": True, "非党员": False, "": False}

# A problem's code → its message; "duplicate" names the earlier row with the same phone.
PROBLEMS = {
    "name_empty": _l("姓名为空"),
    "name_too_long": _l("姓名超过 50 个字"),
    "name_bad_chars": _l("姓名含表情符号或控制字符"),
    "bad_phone": _l("手机号不是 11 位中国大陆手机号"),
    "duplicate": _l("与第 %(row)s 行手机号重复"),
    "other_organization": _l("已是其他组织的成员"),
    "bad_party_member": _l("“%(column)s”一栏须填“是”或“否”"),
    "note_too_long": _l("备注超过 200 字"),
}
ACTIONS = {"create": _l("新建账号并发送激活短信"), "invite": _l("已注册，将邀请其加入"),
           "skip": _l("已是本组织成员，跳过")}
# Letters (Chinese and others), combining marks, digits and the separators of names like 阿依古丽·买买提.
_NAME_PUNCTUATION = set(" ·•・.-'")


class ActivationLinkInvalid(DomainError):
    """Expired, used, voided or never issued: one answer for all."""

    code, status = "invalid_link", 410
    message = _l("这个激活链接已失效（已使用、已过期或已重新发送）。请联系您所在组织的协调员重新发送邀请短信。")


def problem_text(row: dict) -> str | None:
    if row.get("problem") is None:
        return None
    message = PROBLEMS[row["problem"]]
    return str(message) % {"row": row.get("duplicate_of"), "column": HEADERS["party_member"]}


def action_text(row: dict) -> str | None:
    return str(ACTIONS[row["action"]]) if row.get("action") else None


def _name_problem(name: str) -> str | None:
    if not name:
        return "name_empty"
    if len(name) > MAX_NAME:
        return "name_too_long"
    if any(not (unicodedata.category(ch)[0] in "LMN" or ch in _NAME_PUNCTUATION) for ch in name):
        return "name_bad_chars"
    return None


def _users_by_phone(phones: list[str]) -> dict[str, User]:
    found: dict[str, User] = {}
    for start in range(0, len(phones), 900):  # within SQLite's bound-parameter limit
        chunk = phones[start:start + 900]
        found.update((user.phone, user) for user in db.session.scalars(select(User).where(User.phone.in_(chunk))))
    return found


def check_rows(organization: Organization, raw_rows) -> list[dict]:
    """Each row with its first problem, or what confirming will do with it (create, invite, skip)."""
    rows: list[dict] = []
    first_row_of: dict[str, int] = {}
    for raw in raw_rows:
        name = " ".join(raw.name.split())
        phone = normalize_phone(raw.phone)
        party = PARTY_VALUES.get(raw.party_member.strip().lower())
        row = {"row": raw.row, "name": name[:MAX_NAME + 10], "phone": phone[:20], "party_member": party,
               "note": raw.note[:MAX_NOTE], "problem": None, "action": None}
        problem = _name_problem(name)
        if problem is None and not is_phone(phone):
            problem = "bad_phone"
        if problem is None and phone in first_row_of:
            problem, row["duplicate_of"] = "duplicate", first_row_of[phone]
        if problem is None and party is None:
            problem = "bad_party_member"
        if problem is None and len(raw.note) > MAX_NOTE:
            problem = "note_too_long"
        if is_phone(phone):
            first_row_of.setdefault(phone, raw.row)
        row["problem"] = problem
        rows.append(row)
    existing = _users_by_phone([row["phone"] for row in rows if row["problem"] is None])
    for row in rows:
        if row["problem"] is not None:
            continue
        user = existing.get(row["phone"])
        if user is None:
            row["action"] = "create"
        elif user.organization_id == organization.id:
            row["action"] = "skip"
        elif user.organization_id is not None:
            row["problem"] = "other_organization"
        else:
            row["action"] = "invite"
    return rows


def preview_import(organization: Organization, *, filename: str, data: bytes, actor: User) -> RosterImport:
    """Parse and check an uploaded roster and store the result; nothing else is written. Raises Forbidden,
    RosterRefused, RosterTooLarge."""
    require_member_manager(organization, actor=actor)
    rows = check_rows(organization, read_roster(data))
    problems = sum(row["problem"] is not None for row in rows)
    roster = RosterImport(organization_id=organization.id, created_by_id=actor.id, filename=filename[:255] or "-",
                          file_sha256=hashlib.sha256(data).hexdigest(), rows=rows, ok=len(rows) - problems,
                          problems=problems)
    db.session.add(roster)
    db.session.flush()
    record_event("roster_import.preview", roster, actor=actor,
                 details={"organization_id": organization.id, "rows": len(rows), "ok": roster.ok,
                          "problems": problems, "sha256": roster.file_sha256})
    return roster


def get_import(organization: Organization, import_id: int, *, actor: User) -> RosterImport:
    """Raises Forbidden, NotFound (also for another organisation's import)."""
    require_member_manager(organization, actor=actor)
    roster = db.session.get(RosterImport, import_id)
    if roster is None or roster.organization_id != organization.id:
        raise NotFound()
    return roster


def rows_page(roster: RosterImport, *, page: int, per_page: int, only: str = "") -> dict:
    """One page of the preview's rows (only those with a problem, with only="problems"), as paginate() gives."""
    rows = [row for row in roster.rows if row["problem"]] if only else roster.rows
    start = (page - 1) * per_page
    return {"items": rows[start:start + per_page], "page": page, "per_page": per_page, "total": len(rows)}


def confirm_import(roster: RosterImport, *, actor: User) -> dict[str, int]:
    """Write the good rows in the caller's one transaction: new people as pending accounts with an activation SMS,
    registered people in no organisation invited, members already skipped. Idempotent: confirming again, or
    confirming another import of the same people, finds them and creates nothing. Raises Forbidden."""
    organization = roster.organization
    require_member_manager(organization, actor=actor)
    # Two confirms of this organisation's imports (a double click, two coordinators, the same file uploaded twice)
    # take turns: the second finds the first one's people.
    lock(organization)
    good = [row for row in roster.rows if row["problem"] is None]
    existing = _users_by_phone([row["phone"] for row in good])
    invited_already = set(db.session.scalars(select(MemberInvitation.user_id).where(
        MemberInvitation.organization_id == organization.id,
        MemberInvitation.user_id.in_([user.id for user in existing.values()]))))
    new_users: list[User] = []
    invitations: list[MemberInvitation] = []
    skipped = 0
    for row in good:
        user = existing.get(row["phone"])
        if user is None:
            new_users.append(User(phone=row["phone"], name=row["name"], password_hash=UNUSABLE_PASSWORD,
                                  organization_id=organization.id, party_member=row["party_member"],
                                  pending_activation=True, role_rows=[UserRole(role=Role.VOLUNTEER.value)]))
        elif user.organization_id is None and user.id not in invited_already and not user.pending_activation:
            invitations.append(MemberInvitation(organization_id=organization.id, user_id=user.id,
                                                import_id=roster.id, party_member=row["party_member"]))
            invited_already.add(user.id)
        else:
            skipped += 1
    db.session.add_all(new_users)
    db.session.add_all(invitations)
    db.session.flush()
    for user in new_users:
        user.volunteer_no = f"FC{user.id:07d}"
    record_events([("user.create", user, {"roles": [Role.VOLUNTEER.value], "import_id": roster.id})
                   for user in new_users], actor=actor)
    _send_activations(new_users, organization, actor=actor)
    notify_many([invitation.user for invitation in invitations], "organization_invitation",
                link=_invitations_link(), organization=organization.name)
    record_events([("organization.invite", invitation, {"organization_id": organization.id,
                                                          "user_id": invitation.user_id})
                   for invitation in invitations], actor=actor)
    result = {"created": len(new_users), "invited": len(invitations), "skipped": skipped}
    if roster.confirmed_at is None:  # what the first confirm did; a repeat (a double click) finds nothing to do
        roster.confirmed_at, roster.result = utcnow(), result
    db.session.flush()
    record_event("roster_import.confirm", roster, actor=actor,
                 details={"organization_id": organization.id, **result})
    return result


def _invitations_link() -> str:
    from flask import url_for

    return url_for("organizations.invitations")


def issue_tokens(users: list[User], *, actor: User) -> list[tuple[str, ActivationToken]]:
    """A fresh activation token for each user: (the raw token, for the link, once; its row, holding the hash)."""
    now = utcnow()
    issued = [(secrets.token_urlsafe(32), user) for user in users]
    tokens = [ActivationToken(user_id=user.id, token_hash=token_hash(raw), created_by_id=actor.id, created_at=now,
                              expires_at=now + ACTIVATION_LIFETIME) for raw, user in issued]
    db.session.add_all(tokens)
    db.session.flush()
    return [(raw, token) for (raw, _user), token in zip(issued, tokens, strict=True)]


def _send_activations(users: list[User], organization: Organization, *, actor: User) -> None:
    """A fresh activation link for each user, sent by SMS; only the link's hash is stored."""
    from credits.share.content import public_url

    if not users:
        return
    issued = issue_tokens(users, actor=actor)
    send_texts([(user.phone, _("【公益币】%(org)s邀请您加入公益币志愿服务。请在 7 天内打开链接设置密码、激活账号："
                               "%(link)s", org=organization.name, link=public_url("organizations.activate", token=raw)),
                 f"activation:{token.id}", user)
                for user, (raw, token) in zip(users, issued, strict=True)], kind="activation")
    # One event for the batch (a roster of thousands): who was sent a link, and the tokens' ids.
    record_event("activation.send", organization, actor=actor,
                 details={"user_ids": [token.user_id for _raw, token in issued],
                          "token_ids": [token.id for _raw, token in issued]})


def resend_invitation(organization: Organization, user_id: int, *, actor: User) -> User:
    """A new activation SMS for a member still pending; every earlier link of theirs stops working. Raises
    Forbidden, NotFound (no such pending member of this organisation)."""
    require_member_manager(organization, actor=actor)
    user = db.session.get(User, user_id)
    if user is not None:
        lock(user)
    if user is None or user.organization_id != organization.id or not user.pending_activation:
        raise NotFound(_l("该成员不存在或已激活。"))
    db.session.execute(update(ActivationToken).where(
        ActivationToken.user_id == user.id, ActivationToken.used_at.is_(None), ActivationToken.voided_at.is_(None))
        .values(voided_at=utcnow()).execution_options(synchronize_session=False))
    _send_activations([user], organization, actor=actor)
    record_event("activation.resend", user, actor=actor, details={"organization_id": organization.id})
    return user


def live_token(raw: str) -> ActivationToken:
    """The unused, unexpired, unvoided token behind a link. Raises ActivationLinkInvalid."""
    token = db.session.scalars(select(ActivationToken).where(ActivationToken.token_hash == token_hash(raw))
                               ).one_or_none()
    if (token is None or token.used_at is not None or token.voided_at is not None
            or token.expires_at <= utcnow() or not token.user.pending_activation or not token.user.is_active_user):
        raise ActivationLinkInvalid()
    return token


def activate(raw: str, *, password: str) -> User:
    """The person behind the link sets their password: the account becomes usable, and its phone verified (the
    link came by SMS to it). Raises ActivationLinkInvalid, InvalidInput (a guessable password)."""
    token = live_token(raw)
    lock(token)  # the same link opened twice at once: the second finds it used
    token = live_token(raw)
    user = token.user
    problem = password_problem(password, phone=user.phone, name=user.name)
    if problem:
        raise InvalidInput(fields={"password": [problem]})
    now = utcnow()
    token.used_at = now
    user.password_hash = hash_password(password)
    user.password_changed_at = now
    user.pending_activation = False
    user.phone_verified_at = now
    db.session.flush()
    record_event("user.activate", user, actor=user, details={"token_id": token.id})
    return user


# --- invitations of people already registered ---------------------------------------------------------------

def open_invitations(user: User):
    return (select(MemberInvitation).where(MemberInvitation.user_id == user.id,
                                           MemberInvitation.answered_at.is_(None))
            .order_by(MemberInvitation.id.desc()))


def answer_invitation(invitation_id: int, *, accept: bool, actor: User) -> MemberInvitation:
    """The invited person joins the organisation, or declines. Raises NotFound (not theirs, or answered),
    InvalidState (a member of an organisation meanwhile: moving is another flow)."""
    invitation = db.session.get(MemberInvitation, invitation_id)
    if invitation is not None:
        lock(invitation)
    if invitation is None or invitation.user_id != actor.id or invitation.answered_at is not None:
        raise NotFound(_l("这份邀请不存在或已处理。"))
    lock(actor)
    if accept and actor.organization_id is not None:
        raise InvalidState(_l("您已是其他组织的成员，不能再接受这份邀请。"))
    invitation.answered_at, invitation.accepted = utcnow(), accept
    if accept:
        actor.organization_id = invitation.organization_id
        actor.party_member = actor.party_member or invitation.party_member
    db.session.flush()
    record_event("organization.invitation_accept" if accept else "organization.invitation_decline", invitation,
                 actor=actor, details={"organization_id": invitation.organization_id})
    return invitation


def organization_for(org_id: int, *, actor: User) -> Organization:
    """The organisation, for one who manages its members. Raises NotFound, Forbidden."""
    organization = get_organization_or_404(org_id)
    require_member_manager(organization, actor=actor)
    return organization
