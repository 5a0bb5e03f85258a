"""SMS verification codes (SPEC 2.7): registration, password reset and change of phone need a 6-digit code sent to
that phone. Functions flush, never commit; they raise DomainErrors.

A code is 6 digits from `secrets`, kept only as an HMAC keyed with the app's secret (a copy of the table alone does
not give the codes back), valid CODE_LIFETIME, single use, void after MAX_WRONG_TRIES. Only the newest code of a
phone and purpose counts. Asking for a code answers the same whether or not the phone is registered: the text is
simply not sent when it could not be used (a reset for an unknown phone, a registration of a taken one)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from credits.auth import services
from credits.auth.audit import record_event
from credits.auth.models import CodePurpose, PhoneCode, User
from credits.auth.services import PhoneTaken, set_password
from credits.database import lock
from credits.errors import DomainError, Unauthorized
from credits.extensions import db
from credits.notifications.services import send_text
from credits.settings.services import policy
from credits.timeutil import utcnow

CODE_LIFETIME = timedelta(minutes=10)
MAX_WRONG_TRIES = 5


class CodeRejected(DomainError):
    """Wrong, expired, used, void, or for another phone or purpose: one answer for all, which says nothing about
    whether the phone is registered. The wrong try it may have counted is the caller's to commit."""

    code, status, message = "validation_error", 422, _l("验证码不正确或已失效，请重新获取。")

    def __init__(self) -> None:
        super().__init__(fields={"code": [str(self.message)]})


class CodeRequired(DomainError):
    code, status, message = "validation_error", 422, _l("请输入短信验证码。")

    def __init__(self) -> None:
        super().__init__(fields={"code": [str(self.message)]})


def verification_required() -> bool:
    return policy("phone_verification") == "required"


def _digest(phone: str, purpose: str, code: str) -> str:
    key = current_app.secret_key.encode() if isinstance(current_app.secret_key, str) else current_app.secret_key
    return hmac.new(key, f"{phone}:{purpose}:{code}".encode(), hashlib.sha256).hexdigest()


def _registered(phone: str) -> User | None:
    return db.session.scalars(select(User).where(User.phone == phone)).one_or_none()


def asker(purpose: str, current) -> User | None:
    """Who asks for a code: the signed-in user, or None. Raises Unauthorized for a change of phone with no one
    signed in (before the request is counted against the limits)."""
    if current.is_authenticated:
        return current._get_current_object()  # flask_login's current_user
    if purpose == CodePurpose.CHANGE_PHONE:
        raise Unauthorized()
    return None


def request_code(phone: str, purpose: str, *, actor: User | None = None) -> PhoneCode | None:
    """Make a code and queue its SMS, when it could be used: a registration of a free phone, a reset of an active
    account's phone, a change to a free phone by the signed-in `actor`. Returns the code row, or None when nothing
    is sent (which the caller must not reveal). Raises Unauthorized for a change of phone with no one signed in."""
    purpose = CodePurpose(purpose).value
    if purpose == CodePurpose.CHANGE_PHONE and actor is None:
        raise Unauthorized()
    owner = _registered(phone)
    usable = {CodePurpose.REGISTER: owner is None,
              CodePurpose.RESET: owner is not None and owner.is_active_user,
              CodePurpose.CHANGE_PHONE: owner is None}[CodePurpose(purpose)]
    if not usable:
        return None
    code = f"{secrets.randbelow(10**6):06d}"
    now = utcnow()
    row = PhoneCode(phone=phone, purpose=purpose, code_hash=_digest(phone, purpose, code),
                    user_id=actor.id if actor is not None else None, created_at=now, expires_at=now + CODE_LIFETIME)
    db.session.add(row)
    db.session.flush()
    send_text(phone, kind="verification_code", key=f"code:{row.id}", user=owner or actor,
              text=_("【公益币】您的验证码是 %(code)s，10 分钟内有效。请勿告诉他人。", code=code))
    record_event("phone_code.send", row, actor=actor or owner, details={"purpose": purpose})
    return row


def check_code(phone: str, purpose: str, code: str | None, *, actor: User | None = None) -> PhoneCode:
    """Use the newest code of this phone and purpose: mark it used and return it. Raises CodeRejected; a wrong
    code counts a try (flushed: the caller commits it before answering), and the fifth voids the code."""
    if not code:
        raise CodeRequired()
    row = db.session.scalars(select(PhoneCode).where(PhoneCode.phone == phone, PhoneCode.purpose == purpose)
                             .order_by(PhoneCode.id.desc()).limit(1)).one_or_none()
    if row is None:
        raise CodeRejected()
    lock(row)  # two requests with the same code: the second sees it used
    if row.used_at is not None or row.attempts >= MAX_WRONG_TRIES or row.expires_at <= utcnow():
        raise CodeRejected()
    if purpose == CodePurpose.CHANGE_PHONE and (actor is None or row.user_id != actor.id):
        raise CodeRejected()
    if not hmac.compare_digest(row.code_hash, _digest(phone, purpose, code)):
        row.attempts += 1
        db.session.flush()
        raise CodeRejected()
    row.used_at = utcnow()
    db.session.flush()
    return row


@contextmanager
def wrong_tries_kept() -> Iterator[None]:
    """Around a view's use of a code: a rejected code is answered after committing the wrong try it counted (and
    nothing else: every check of a code comes before any other change)."""
    try:
        yield
    except CodeRejected:
        db.session.commit()
        raise


def register(*, phone: str, name: str, password: str, organization_id: int | None = None,
             code: str | None = None) -> User:
    """Registration (auth.services.register) behind the code sent to the phone, when the `phone_verification`
    policy requires one; a code given under `off` is ignored. Raises CodeRequired, CodeRejected, PhoneTaken…"""
    row = check_code(phone, CodePurpose.REGISTER, code) if verification_required() else None
    user = services.register(phone=phone, name=name, password=password, organization_id=organization_id)
    if row is not None:
        user.phone_verified_at = row.used_at
        db.session.flush()
    return user


def reset_password(*, phone: str, code: str, password: str) -> User:
    """Forgotten password: phone + code + new password; every session and token of the user ends. Raises
    CodeRejected (also for a phone with no active account, which never got a code)."""
    row = check_code(phone, CodePurpose.RESET, code)
    user = _registered(phone)
    if user is None or not user.is_active_user:
        raise CodeRejected()
    user.phone_verified_at = row.used_at
    # An imported account not yet activated: the code proves the phone as its activation link would have.
    user.pending_activation = False
    set_password(user, password, actor=user)  # ends every session and token
    record_event("user.password_reset", user, actor=user)
    return user


def change_phone(user: User, *, phone: str, code: str) -> User:
    """The signed-in user moves their account to `phone`, proven by a code sent there. Raises CodeRejected,
    PhoneTaken (registered since the code was sent)."""
    row = check_code(phone, CodePurpose.CHANGE_PHONE, code, actor=user)
    if _registered(phone) is not None:
        raise PhoneTaken()
    previous = user.phone
    user.phone = phone
    user.phone_verified_at = row.used_at
    db.session.flush()
    record_event("user.phone_change", user, actor=user, details={"previous": previous[:3] + "****" + previous[-4:]})
    return user
