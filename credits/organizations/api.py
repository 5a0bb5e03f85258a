"""JSON API: creating organisations, importing a roster (preview, confirm), resending an activation SMS."""

from __future__ import annotations

from flask import request
from flask_babel import gettext as _
from flask_login import current_user
from flask_smorest import Blueprint
from werkzeug.exceptions import RequestEntityTooLarge

from credits.auth import services as auth
from credits.auth.permissions import BEARER, login_required
from credits.auth.schemas import OrganizationIn, OrganizationOut
from credits.errors import InvalidInput
from credits.extensions import db
from credits.gate import takes_upload
from credits.organizations import services
from credits.organizations.parsing import RosterTooLarge
from credits.organizations.schemas import ConfirmOut, ImportOut, ImportPageOut, PreviewArgs

blp = Blueprint("organizations_api", __name__, description="Organisations: creation, roster import, activation")


def uploaded_roster() -> tuple[str, bytes]:
    """The uploaded `file` field: its name and bytes. Raises InvalidInput (no file), RosterTooLarge."""
    try:
        upload = request.files.get("file")
    except RequestEntityTooLarge as exc:
        raise RosterTooLarge() from exc
    if upload is None or not upload.filename:
        raise InvalidInput(fields={"file": [_("请选择要上传的名单文件（XLSX 或 CSV）。")]})
    return upload.filename, upload.read()


@blp.post("/organizations")
@login_required
@blp.arguments(OrganizationIn)
@blp.response(201, OrganizationOut)
@blp.doc(security=BEARER)
def create_organization(data):
    """Create an organisation (admins)."""
    org = auth.create_organization(name=data["name"], kind=data["kind"], actor=current_user)
    db.session.commit()
    return org


@blp.post("/organizations/<int:org_id>/imports")
@login_required
@blp.response(201, ImportOut)
@blp.doc(security=BEARER)
@takes_upload
def preview_import(org_id):
    """Upload a roster (multipart `file`: XLSX, or CSV in UTF-8 or GBK; columns 姓名, 手机号, 党员, 备注) and get
    the preview: every row with its problem (`problem`, null when none) or what confirming will do (`action`:
    create, invite, skip). Nothing but the preview is stored. 422 for a file that is not a roster, 413 past 5,000
    rows or 2 MB. Its coordinators and admins."""
    organization = services.organization_for(org_id, actor=current_user)
    filename, data = uploaded_roster()
    roster = services.preview_import(organization, filename=filename, data=data, actor=current_user)
    db.session.commit()
    return roster


@blp.get("/organizations/<int:org_id>/imports/<int:import_id>")
@login_required
@blp.arguments(PreviewArgs, location="query")
@blp.response(200, ImportPageOut)
@blp.doc(security=BEARER)
def get_import(args, org_id, import_id):
    """A stored preview and, once confirmed, its result; the rows a page at a time (`only=problems`: those with a
    problem)."""
    organization = services.organization_for(org_id, actor=current_user)
    roster = services.get_import(organization, import_id, actor=current_user)
    return {"id": roster.id, "filename": roster.filename, "ok": roster.ok, "problems": roster.problems,
            "confirmed_at": roster.confirmed_at, "result": roster.result, "rows": services.rows_page(roster, **args)}


@blp.post("/organizations/<int:org_id>/imports/<int:import_id>/confirm")
@login_required
@blp.response(200, ConfirmOut)
@blp.doc(security=BEARER)
def confirm_import(org_id, import_id):
    """Write the preview's good rows in one transaction. Confirming again (or another import of the same people)
    creates nothing new: they count as `skipped`."""
    organization = services.organization_for(org_id, actor=current_user)
    result = services.confirm_import(services.get_import(organization, import_id, actor=current_user),
                                     actor=current_user)
    db.session.commit()
    return result


@blp.post("/organizations/<int:org_id>/members/<int:member_id>/invitation")
@login_required
@blp.response(204)
@blp.doc(security=BEARER)
def resend_invitation(org_id, member_id):
    """Send a member who has not activated a new activation SMS; their earlier links stop working."""
    organization = services.organization_for(org_id, actor=current_user)
    services.resend_invitation(organization, member_id, actor=current_user)
    db.session.commit()
