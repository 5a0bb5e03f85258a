"""Admin pages. Every route needs the admin role; the services check it again."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from credits.auth import services
from credits.auth.models import AuditEvent, Organization, Role, User
from credits.auth.permissions import role_required
from credits.auth.schemas import PASSWORD, NewPasswordMixin, OrganizationIn, StripMixin, UserAdminIn
from credits.errors import NotFound
from credits.extensions import db
from credits.fields import Id, Phone, Text, normalize_phone
from credits.hours import services as hours
from credits.hours.schemas import ReasonIn
from credits.pagination import PageArgs, paginate
from credits.reports import issuance
from credits.settings.services import PolicySchema, get_policy, update_policy
from credits.timeutil import LocalDate, local_day_range, utcnow
from credits.web.forms import form_view

bp = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates")


@bp.before_request
@role_required(Role.ADMIN)
def require_admin():
    """Guards every admin page."""


class UserSearchArgs(PageArgs):
    q = Text(load_default="", validate=validate.Length(max=50))


class UserCreateIn(NewPasswordMixin, StripMixin, Schema):
    phone = Phone(required=True)
    name = Text(required=True, validate=validate.Length(min=1, max=50))
    password = Text(required=True, validate=PASSWORD)
    roles = fields.List(fields.String(validate=validate.OneOf([r.value for r in Role])),
                        required=True, validate=validate.Length(min=1))
    organization_id = Id(load_default=None, allow_none=True)


class IssuanceArgs(PageArgs):
    days = fields.Integer(load_default=30, validate=validate.Range(1, 3660))
    section = fields.String(load_default=None, validate=validate.OneOf(list(issuance.SECTIONS_BY_KEY)))


class AuditArgs(PageArgs):
    actor = Text(load_default="", validate=validate.Length(max=20))
    action = Text(load_default="", validate=validate.Length(max=60))
    object_type = Text(load_default="", validate=validate.Length(max=40))
    object_id = Text(load_default="", validate=validate.Length(max=40))
    from_ = LocalDate(data_key="from", load_default=None)
    to = LocalDate(load_default=None)

    @validates_schema(skip_on_field_errors=False)
    def ordered(self, data, **_kwargs):
        if data.get("from_") and data.get("to") and data["to"] < data["from_"]:
            raise ValidationError(_("结束日期不能早于开始日期。"), "to")


def _organizations():
    return db.session.scalars(select(Organization).order_by(Organization.name)).all()


@bp.get("/users")
def users():
    args = UserSearchArgs().load(request.args)
    stmt = select(User).order_by(User.id)
    if args["q"]:
        digits = normalize_phone(args["q"])  # "139 1234-5678" finds 13912345678
        like = f"%{digits if digits.isdigit() else args['q']}%"
        stmt = stmt.where(or_(User.phone.like(like), User.name.like(like), User.volunteer_no.like(like)))
    page = paginate(stmt, args["page"], args["per_page"])
    return render_template("admin/users.html", page=page, q=args["q"])


@bp.route("/users/new", methods=["GET", "POST"])
def user_new():
    def create(data):
        user = services.create_user(actor=current_user, **data)
        db.session.commit()
        flash(_("已创建用户 %(name)s。", name=user.name), "success")
        return redirect(url_for("admin.user_edit", user_id=user.id))

    return form_view(UserCreateIn(), "admin/user_new.html", create, organizations=_organizations())


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
def user_edit(user_id: int):
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(what="user")

    def save(data):
        services.update_user(user, actor=current_user, **data)
        db.session.commit()
        flash(_("已保存。"), "success")
        return redirect(url_for("admin.user_edit", user_id=user.id))

    return form_view(UserAdminIn(), "admin/user_edit.html", save, user=user, organizations=_organizations())


@bp.route("/organizations", methods=["GET", "POST"])
def organizations():
    def create(data):
        services.create_organization(actor=current_user, **data)
        db.session.commit()
        flash(_("已添加组织。"), "success")
        return redirect(url_for("admin.organizations"))

    args = PageArgs().load(request.args)
    page = paginate(select(Organization).order_by(Organization.id), args["page"], args["per_page"])
    return form_view(OrganizationIn(), "admin/organizations.html", create, page=page)


@bp.route("/organizations/<int:org_id>", methods=["GET", "POST"])
def organization_edit(org_id: int):
    org = db.session.get(Organization, org_id)
    if org is None:
        raise NotFound(what="organization")

    def save(data):
        services.update_organization(org, actor=current_user, **data)
        db.session.commit()
        flash(_("已保存。"), "success")
        return redirect(url_for("admin.organizations"))

    return form_view(OrganizationIn(), "admin/organization_edit.html", save, org=org)


@bp.route("/policy", methods=["GET", "POST"])
def policy():
    def save(data):
        update_policy(data, actor=current_user)
        db.session.commit()
        flash(_("政策设置已保存。"), "success")
        return redirect(url_for("admin.policy"))

    return form_view(PolicySchema(), "admin/policy.html", save, current=get_policy(),
                     schema=PolicySchema())


@bp.get("/audit")
def audit():
    args = AuditArgs().load(request.args)
    stmt = select(AuditEvent).options(selectinload(AuditEvent.actor)).order_by(AuditEvent.id.desc())
    if args["actor"]:
        stmt = stmt.join(User, User.id == AuditEvent.actor_id).where(
            or_(User.phone == normalize_phone(args["actor"]), User.volunteer_no == args["actor"]))
    if args["action"]:
        stmt = stmt.where(AuditEvent.action.startswith(args["action"]))
    if args["object_type"]:
        stmt = stmt.where(AuditEvent.object_type == args["object_type"])
    if args["object_id"]:
        stmt = stmt.where(AuditEvent.object_id == args["object_id"])
    if args["from_"]:
        stmt = stmt.where(AuditEvent.created_at >= local_day_range(args["from_"], args["from_"])[0])
    if args["to"]:
        stmt = stmt.where(AuditEvent.created_at < local_day_range(args["to"], args["to"])[1])
    page = paginate(stmt, args["page"], args["per_page"])
    filters = {("from" if k == "from_" else k): v for k, v in args.items() if k not in ("page", "per_page") and v}
    return render_template("admin/audit.html", page=page, filters=filters)


ISSUANCE_PREVIEW = 10  # rows of each section on the overview; a section's own page has them all, paginated


def _issuance_context(args: dict) -> dict:
    end = utcnow()
    start, policy = end - timedelta(days=args["days"]), get_policy()
    chosen = [issuance.SECTIONS_BY_KEY[args["section"]]] if args["section"] else issuance.SECTIONS
    page, per_page = (args["page"], args["per_page"]) if args["section"] else (1, ISSUANCE_PREVIEW)
    pages = {s.key: paginate(s.query(start, end, policy), page, per_page, scalars=False) for s in chosen}
    return {"sections": chosen, "pages": pages, "days": args["days"], "section": args["section"], "start": start,
            "end": end}


@bp.get("/issuance")
def issuance_report():
    """The integrity report on issuance (SPEC 2.3): who issued how much, and the patterns a one-person mint leaves.
    Records awaiting a second approval can be decided here: an admin may be the second person."""
    return render_template("admin/issuance.html", errors={}, values={},
                           **_issuance_context(IssuanceArgs().load(request.args)))


@bp.post("/issuance/records/<int:record_id>/<any(approve, reject):action>")
def issuance_decide(record_id: int, action: str):
    """The second approval (or a rejection) of a record awaiting it, from the report's list."""
    record = hours.get_record(record_id, viewer=current_user)

    def done(data):
        if action == "approve":
            coins = hours.approve(record, reviewer=current_user)
            message = _("已复核通过，发放 %(coins)s 公益币。", coins=coins)
        else:
            hours.reject(record, data["reason"], reviewer=current_user)
            message = _("已驳回该记录。")
        db.session.commit()
        flash(message, "success")
        return redirect(url_for("admin.issuance_report", section="awaiting"))

    return form_view(ReasonIn() if action == "reject" else Schema(), "admin/issuance.html", done,
                     **_issuance_context(IssuanceArgs().load({"section": "awaiting"})))
