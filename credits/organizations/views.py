"""Pages: a coordinator's roster import (upload → preview → confirm), the template, the activation link, resending
an invitation, and the invitations a registered person answers."""

from __future__ import annotations

import io

from flask import Blueprint, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_user

from credits.auth.audit import record_event
from credits.auth.permissions import login_required, role_required
from credits.auth.services import require_own_organization
from credits.errors import InvalidInput, came_from
from credits.extensions import db, limiter
from credits.organizations import services
from credits.organizations.api import uploaded_roster
from credits.organizations.parsing import HEADER_LINE, RosterTooLarge
from credits.organizations.schemas import ActivateIn, PreviewArgs
from credits.pagination import PageArgs, paginate
from credits.web.forms import form_view

bp = Blueprint("organizations", __name__, template_folder="templates")


@bp.get("/coordinate/roster")
@role_required("coordinator")
def my_import():
    """The coordinator's way in: their own organisation's import page, or what to ask the admin for."""
    organization = require_own_organization(current_user)
    return redirect(url_for(".import_page", org_id=organization.id))


@bp.route("/coordinate/organizations/<int:org_id>/import", methods=["GET", "POST"])
@login_required
def import_page(org_id: int):
    organization = services.organization_for(org_id, actor=current_user)
    errors: dict = {}
    if request.method == "POST":
        try:
            filename, data = uploaded_roster()
            roster = services.preview_import(organization, filename=filename, data=data, actor=current_user)
        except (InvalidInput, RosterTooLarge) as exc:
            db.session.rollback()
            errors = dict(exc.fields or {"file": [str(exc.message)]})
        else:
            db.session.commit()
            return redirect(url_for(".import_preview", org_id=organization.id, import_id=roster.id))
    return render_template("organizations/import.html", org=organization, errors=errors,
                           header_line=HEADER_LINE), 422 if errors else 200


@bp.get("/coordinate/organizations/<int:org_id>/import/template.xlsx")
@login_required
def import_template(org_id: int):
    """The empty template: the header row only (an example row would be imported by whoever forgot to delete it)."""
    from openpyxl import Workbook
    from openpyxl.worksheet.datavalidation import DataValidation

    services.organization_for(org_id, actor=current_user)
    workbook = Workbook()
    sheet = workbook.active
    # The headers are the file format the import reads, in Chinese whatever the page's language.
    sheet.title = "成员名单"
    sheet.append(HEADER_LINE.split("、"))
    for column, width in zip("ABCD", (14, 16, 14, 30), strict=True):
        sheet.column_dimensions[column].width = width
    party = DataValidation(type="list", formula1='"是,否"', allow_blank=True)
    sheet.add_data_validation(party)
    party.add("C2:C5001")
    for row in range(2, 5002):  # typed as text, so Excel keeps 11 digits instead of 1.39E+10
        sheet.cell(row=row, column=2).number_format = "@"
    buffer = io.BytesIO()
    workbook.save(buffer)
    buffer.seek(0)
    return send_file(buffer, as_attachment=True, download_name="roster-template.xlsx",
                     mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


@bp.get("/coordinate/organizations/<int:org_id>/imports/<int:import_id>")
@login_required
def import_preview(org_id: int, import_id: int):
    organization = services.organization_for(org_id, actor=current_user)
    roster = services.get_import(organization, import_id, actor=current_user)
    args = PreviewArgs().load(request.args)
    page = services.rows_page(roster, **args)
    counts = {action: sum(row.get("action") == action for row in roster.rows) for action in services.ACTIONS}
    return render_template("organizations/preview.html", org=organization, roster=roster, page=page,
                           only=args["only"], counts=counts, problem_text=services.problem_text,
                           action_text=services.action_text)


@bp.post("/coordinate/organizations/<int:org_id>/imports/<int:import_id>/confirm")
@login_required
def confirm_import(org_id: int, import_id: int):
    organization = services.organization_for(org_id, actor=current_user)
    result = services.confirm_import(services.get_import(organization, import_id, actor=current_user),
                                     actor=current_user)
    db.session.commit()
    flash(_("导入完成：新建 %(created)s 人（已发送激活短信），邀请 %(invited)s 人，跳过 %(skipped)s 人。", **result),
          "success")
    return redirect(url_for(".import_preview", org_id=organization.id, import_id=import_id))


@bp.post("/organizations/<int:org_id>/members/<int:member_id>/invitation")
@login_required
def resend_invitation(org_id: int, member_id: int):
    """Resend a pending member's activation SMS (the members page's button); earlier links stop working."""
    organization = services.organization_for(org_id, actor=current_user)
    user = services.resend_invitation(organization, member_id, actor=current_user)
    db.session.commit()
    flash(_("已重新发送激活短信给 %(name)s，之前的链接已失效。", name=user.name), "success")
    return redirect(came_from())


def activation_limit() -> str:
    return current_app.config["ACTIVATION_RATE_LIMIT"]


@bp.route("/activate/<token>", methods=["GET", "POST"])
@limiter.limit(activation_limit, key_func=get_remote_address)
def activate(token: str):
    """The link of an invitation SMS: the person sets their password and is signed in."""
    try:
        user = services.live_token(token[:100]).user
    except services.ActivationLinkInvalid:
        db.session.rollback()
        return render_template("organizations/activation_invalid.html"), 410

    def set_password(data):
        activated = services.activate(token[:100], password=data["password"])
        record_event("user.login", activated, actor=activated)
        db.session.commit()
        login_user(activated)
        flash(_("账号已激活，欢迎加入！您的志愿者编号是 %(no)s。", no=activated.volunteer_no), "success")
        return redirect(url_for("auth.account"))

    return form_view(ActivateIn(), "organizations/activate.html", set_password, person=user)


@bp.get("/organizations/invitations")
@login_required
def invitations():
    args = PageArgs().load(request.args)
    page = paginate(services.open_invitations(current_user), args["page"], args["per_page"])
    return render_template("organizations/invitations.html", page=page)


@bp.post("/organizations/invitations/<int:invitation_id>/<any(accept, decline):answer>")
@login_required
def answer_invitation(invitation_id: int, answer: str):
    invitation = services.answer_invitation(invitation_id, accept=answer == "accept", actor=current_user)
    db.session.commit()
    if answer == "accept":
        flash(_("您已加入%(org)s。", org=invitation.organization.name), "success")
    else:
        flash(_("已拒绝%(org)s的邀请。", org=invitation.organization.name), "info")
    return redirect(url_for(".invitations"))
