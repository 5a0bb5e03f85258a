"""JSON API for registration, tokens, the signed-in user and organisations."""

from __future__ import annotations

from flask import g
from flask_login import current_user
from flask_smorest import Blueprint
from sqlalchemy import select

from credits.auth import codes, members, services
from credits.auth.models import Organization
from credits.auth.permissions import BEARER, login_required
from credits.auth.schemas import (
    JoinRequestOut,
    MemberArgs,
    MemberOut,
    MeOut,
    OrganizationOut,
    PasswordChangeIn,
    PasswordResetIn,
    PhoneChangeIn,
    RegisterIn,
    SmsCodeIn,
    TokenIn,
    TokenOut,
)
from credits.auth.throttle import count_sms_code, login_throttled, password_change_limited, registration_limited
from credits.extensions import db
from credits.pagination import PageArgs, page_schema, paginate

blp = Blueprint("auth_api", __name__, description="Accounts, tokens and organisations")


@blp.post("/auth/register")
@registration_limited
@blp.arguments(RegisterIn)
@blp.response(201, MeOut)
def register(data):
    """Register a volunteer account. An `organization_id` is a request to join, pending until the organisation's
    coordinators confirm it (`requested_organization_id`); `organization` stays null until then. `code` is the
    SMS code sent to the phone (`POST /auth/sms-code`, purpose `register`), required unless the
    `phone_verification` policy is `off`."""
    with codes.wrong_tries_kept():
        user = codes.register(**data)
    db.session.commit()
    return user


@blp.post("/auth/sms-code")
@blp.arguments(SmsCodeIn)
@blp.response(202)
def sms_code(data):
    """Send a 6-digit code (valid 10 minutes) to the phone, for `register`, `reset` or `change_phone` (signed in,
    to the new phone). The same 202 whether or not the phone is registered: a code that could not be used is not
    sent. At most 1 a minute and 10 a day per phone and per address (429)."""
    asker = codes.asker(data["purpose"], current_user)
    count_sms_code(data["phone"])
    codes.request_code(data["phone"], data["purpose"], actor=asker)
    db.session.commit()


@blp.post("/auth/password-reset")
@blp.arguments(PasswordResetIn)
@blp.response(204)
def password_reset(data):
    """Forgotten password: phone, the code sent for `reset` and a new password. Every session and token of the
    user ends. A wrong, expired or used code is a 422 (field `code`), whether or not the phone is registered."""
    with codes.wrong_tries_kept():
        codes.reset_password(**data)
    db.session.commit()


@blp.post("/auth/token")
@login_throttled
@blp.arguments(TokenIn)
@blp.response(201, TokenOut)
def create_token(data):
    """Exchange phone and password for a bearer token (valid 30 days)."""
    try:
        user = services.authenticate(data["phone"], data["password"])
    except services.InvalidCredentials:
        g.login_failed = True
        raise
    raw, token = services.issue_token(user)
    db.session.commit()
    return {"token": raw, "expires_at": token.expires_at, "user": user}


@blp.delete("/auth/token")
@login_required
@blp.response(204)
@blp.doc(security=BEARER)
def delete_token():
    """Revoke the token used for this request."""
    services.revoke_token(g.api_token, actor=current_user)
    db.session.commit()


@blp.get("/me")
@login_required
@blp.response(200, MeOut)
@blp.doc(security=BEARER)
def me():
    """The signed-in user."""
    return current_user


@blp.post("/me/password")
@login_required
@password_change_limited
@blp.arguments(PasswordChangeIn)
@blp.response(204)
@blp.doc(security=BEARER)
def change_password(data):
    """Change the password; every session and token of the user ends, this one included."""
    services.change_password(current_user, **data)
    db.session.commit()


@blp.post("/me/phone")
@login_required
@blp.arguments(PhoneChangeIn)
@blp.response(200, MeOut)
@blp.doc(security=BEARER)
def change_phone(data):
    """Move the account to a new phone, proven by the code sent there (`POST /auth/sms-code`, purpose
    `change_phone`, with this token)."""
    with codes.wrong_tries_kept():
        user = codes.change_phone(current_user, **data)
    db.session.commit()
    return user


@blp.get("/organizations")
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_schema(OrganizationOut))
def organizations(args):
    """Organisations a volunteer may belong to."""
    return paginate(select(Organization).order_by(Organization.id), **args)


@blp.get("/organizations/<int:org_id>/requests")
@login_required
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_schema(JoinRequestOut))
@blp.doc(security=BEARER)
def join_requests(args, org_id):
    """People waiting to join the organisation, oldest first (its coordinators and admins)."""
    org = services.get_organization_or_404(org_id)
    return paginate(services.pending_requests(org, actor=current_user), **args)


@blp.post("/organizations/<int:org_id>/requests/<int:user_id>/confirm")
@login_required
@blp.response(200, MeOut)
@blp.doc(security=BEARER)
def confirm_join_request(org_id, user_id):
    """Confirm a pending request: the user becomes a member of the organisation."""
    user = services.confirm_request(services.get_organization_or_404(org_id), user_id, actor=current_user)
    db.session.commit()
    return user


@blp.post("/organizations/<int:org_id>/requests/<int:user_id>/decline")
@login_required
@blp.response(200, MeOut)
@blp.doc(security=BEARER)
def decline_join_request(org_id, user_id):
    """Decline a pending request to join the organisation."""
    user = services.decline_request(services.get_organization_or_404(org_id), user_id, actor=current_user)
    db.session.commit()
    return user


@blp.get("/organizations/<int:org_id>/members")
@login_required
@blp.arguments(MemberArgs, location="query")
@blp.response(200, page_schema(MemberOut))
@blp.doc(security=BEARER)
def organization_members(args, org_id):
    """The organisation's members by name, with hours, projects joined, last activity and activation state (its
    coordinators and admins); `q` matches part of a name or phone."""
    org = services.get_organization_or_404(org_id)
    return paginate(members.members(org, actor=current_user, q=args.get("q")), args["page"], args["per_page"],
                    scalars=False)


@blp.delete("/organizations/<int:org_id>/members/<int:member_id>")
@login_required
@blp.response(204)
@blp.doc(security=BEARER)
def remove_organization_member(org_id, member_id):
    """Remove a member from the organisation; their hours, coins and records stay theirs. 404 for someone who
    is not a member; 403 for removing oneself."""
    members.remove_member(services.get_organization_or_404(org_id), member_id, actor=current_user)
    db.session.commit()
