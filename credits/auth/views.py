"""Sign-in, registration, the account page, password change and sign-out."""

from __future__ import annotations

from flask import Blueprint, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user
from marshmallow import fields
from sqlalchemy import select

from credits.auth import codes, members, services
from credits.auth.audit import record_event
from credits.auth.models import Organization, Role
from credits.auth.permissions import login_required
from credits.auth.schemas import (
    JoinIn,
    MemberArgs,
    PasswordChangeIn,
    PasswordResetIn,
    PhoneChangeIn,
    RegisterIn,
    SmsCodeIn,
    TokenIn,
)
from credits.auth.sessions import idle_limit
from credits.auth.throttle import (
    count_sms_code,
    login_throttled,
    password_change_limited,
    registration_limited,
    remember_device,
)
from credits.errors import Forbidden, NotFound
from credits.extensions import db, login_manager
from credits.merchants.services import mask_phone
from credits.pagination import PageArgs, paginate
from credits.web import large_mode
from credits.web.forms import form_view
from credits.web.views import local_next

bp = Blueprint("auth", __name__, template_folder="templates")


class LoginIn(TokenIn):
    remember = fields.Boolean(load_default=False)


@login_manager.user_loader
def load_user(session_id: str):
    return services.load_session_user(session_id)


@bp.route("/login", methods=["GET", "POST"])
@login_throttled
def login():
    def sign_in(data):
        try:
            user = services.authenticate(data["phone"], data["password"])
        except services.InvalidCredentials:
            g.login_failed = True
            raise
        login_user(user, remember=data["remember"], duration=idle_limit(user))
        remember_device(user.phone)
        record_event("user.login", user, actor=user)
        large_mode.after_sign_in(user)
        db.session.commit()
        return redirect(local_next(_landing(user)))

    return form_view(LoginIn(), "auth/login.html", sign_in, next=_kept_next(),
                     to_check_in=_kept_next().startswith("/checkin/"), on_phone=_on_phone())


def _landing(user) -> str:
    """Where a sign-in without `next` goes: shop staff to the till (核销), everyone else home."""
    if user.has_role(Role.MERCHANT) and not user.has_role(Role.VOLUNTEER, Role.COORDINATOR, Role.ADMIN):
        return url_for("merchants.redeem_screen")
    return url_for("web.home")


def _kept_next() -> str:
    """The local `next` this page was opened with, to carry through sign-in and registration ('' if none)."""
    return local_next("")


def _on_phone() -> bool:
    """Phones default to 记住我: people there sign in mid-task, on their own device, with the keyboard in the way."""
    agent = request.user_agent.string
    return any(mark in agent for mark in ("Mobile", "Android", "iPhone", "MicroMessenger"))


@bp.route("/register", methods=["GET", "POST"])
@registration_limited
def register():
    def create(data):
        with codes.wrong_tries_kept():
            user = codes.register(**data)
        large_mode.after_sign_in(user)
        db.session.commit()
        login_user(user)
        flash(_("注册成功，欢迎加入！您的志愿者编号是 %(no)s。", no=user.volunteer_no), "success")
        if user.requested_organization is not None:
            flash(_("已向%(org)s提交加入申请，该组织协调员确认后您将成为其成员。",
                    org=user.requested_organization.name), "info")
        # A shared project link sent them here through sign-in: straight back to it, mid-秒抢.
        return redirect(local_next(url_for("auth.account")))

    organizations = db.session.scalars(select(Organization).order_by(Organization.name)).all()
    return form_view(RegisterIn(), "auth/register.html", create, organizations=organizations, next=_kept_next(),
                     code_required=codes.verification_required())


@bp.post("/sms-code")
def sms_code():
    """The pages' 获取验证码 button (static/js/sms-code.js): the API's POST /auth/sms-code, behind the page's CSRF
    token, with the signed-in user for a change of phone. Answers JSON: 202, or the error envelope."""
    g.answers_json = True
    data = SmsCodeIn().load({key: request.form.get(key, "") for key in ("phone", "purpose")})
    asker = codes.asker(data["purpose"], current_user)
    count_sms_code(data["phone"])
    codes.request_code(data["phone"], data["purpose"], actor=asker)
    db.session.commit()
    return jsonify(sent=True), 202


@bp.route("/password-reset", methods=["GET", "POST"])
def password_reset():
    """忘记密码: phone, the code sent to it and a new password; every session and token of the account ends."""
    def reset(data):
        with codes.wrong_tries_kept():
            codes.reset_password(**data)
        db.session.commit()
        flash(_("密码已重设，所有设备均已退出，请用新密码登录。"), "success")
        return redirect(url_for("auth.login"))

    return form_view(PasswordResetIn(), "auth/password_reset.html", reset)


@bp.route("/account/phone", methods=["GET", "POST"])
@login_required
def change_phone():
    """Move the account to a new phone, proven by a code sent to it."""
    def change(data):
        with codes.wrong_tries_kept():
            codes.change_phone(current_user, **data)
        db.session.commit()
        flash(_("手机号已更换，请用新手机号登录。"), "success")
        return redirect(url_for("auth.account"))

    return form_view(PhoneChangeIn(), "auth/change_phone.html", change)


@bp.get("/account")
@login_required
def account():
    return render_template("auth/account.html", star=services.star_level(current_user.approved_minutes))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
@password_change_limited
def password():
    def change(data):
        services.change_password(current_user, **data)
        db.session.commit()
        logout_user()
        flash(_("密码已修改，所有设备均已退出，请用新密码登录。"), "success")
        return redirect(url_for("auth.login"))

    return form_view(PasswordChangeIn(), "auth/password.html", change)


@bp.post("/logout")
@login_required
def logout():
    services.end_all_sessions(current_user, actor=current_user, reason="logout")
    db.session.commit()
    logout_user()
    flash(_("您已退出登录。"), "success")
    return redirect(url_for("web.home"))


@bp.get("/coordinate/organizations/<int:org_id>/requests")
@login_required
def join_requests(org_id: int):
    """People waiting to join the organisation, for its coordinators (and admins) to confirm or decline."""
    org = services.get_organization_or_404(org_id)
    args = PageArgs().load(request.args)
    page = paginate(services.pending_requests(org, actor=current_user), args["page"], args["per_page"])
    return render_template("auth/join_requests.html", org=org, page=page, mask_phone=mask_phone)


@bp.post("/coordinate/organizations/<int:org_id>/requests/<int:user_id>/<any(confirm, decline):action>")
@login_required
def decide_join_request(org_id: int, user_id: int, action: str):
    org = services.get_organization_or_404(org_id)
    decide = services.confirm_request if action == "confirm" else services.decline_request
    target = url_for(".join_requests", org_id=org.id)
    try:
        user = decide(org, user_id, actor=current_user)
    except NotFound:  # another coordinator decided first
        db.session.rollback()
        flash(_("该申请已处理或已撤回。"), "info")
        return redirect(target)
    db.session.commit()
    if action == "confirm":
        flash(_("已确认 %(name)s 加入本组织。", name=user.name), "success")
    else:
        flash(_("已拒绝 %(name)s 的加入申请。", name=user.name), "success")
    return redirect(target)


@bp.route("/account/organization", methods=["GET", "POST"])
@login_required
def join_organization():
    """Ask to join an organisation, or to move to another: its coordinators confirm (SPEC 2.8)."""
    def ask(data):
        org = members.ask_to_join(current_user, data["organization_id"])
        db.session.commit()
        flash(_("已向%(org)s提交加入申请，该组织协调员确认后您将成为其成员。", org=org.name), "success")
        return redirect(url_for("auth.account"))

    choices = select(Organization).order_by(Organization.name)
    if current_user.organization_id is not None:
        choices = choices.where(Organization.id != current_user.organization_id)
    return form_view(JoinIn(), "auth/join_organization.html", ask,
                     organizations=db.session.scalars(choices).all())


@bp.get("/coordinate/organizations/<int:org_id>/members")
@login_required
def organization_members(org_id: int):
    """The organisation's members with their participation, searchable by name or phone (its coordinators)."""
    org = services.get_organization_or_404(org_id)
    args = MemberArgs().load({key: value for key, value in request.args.items() if value != ""})
    page = paginate(members.members(org, actor=current_user, q=args.get("q")), args["page"], args["per_page"],
                    scalars=False)
    return render_template("auth/members.html", org=org, page=page, q=args.get("q", ""))


@bp.post("/coordinate/organizations/<int:org_id>/members/<int:member_id>/remove")
@login_required
def remove_member(org_id: int, member_id: int):
    org = services.get_organization_or_404(org_id)
    target = url_for(".organization_members", org_id=org.id)
    try:
        user = members.remove_member(org, member_id, actor=current_user)
    except NotFound:  # another coordinator removed them, or they moved, first
        db.session.rollback()
        flash(_("该用户已不是本组织成员。"), "info")
        return redirect(target)
    except Forbidden as exc:
        if not services.can_manage_members(current_user, org):
            raise
        db.session.rollback()
        flash(str(exc.message), "error")
        return redirect(target)
    db.session.commit()
    flash(_("已将 %(name)s 移出本组织，其服务时长和公益币不受影响。", name=user.name), "success")
    return redirect(target)
