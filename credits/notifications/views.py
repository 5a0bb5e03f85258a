"""The inbox page, marking messages read, SMS settings, and the unread count in the header."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from marshmallow import EXCLUDE, fields, validate

from credits.auth.models import Role
from credits.auth.permissions import login_required, role_required
from credits.extensions import db
from credits.fields import Id
from credits.notifications import services
from credits.notifications.kinds import KINDS
from credits.notifications.models import DeliveryStatus
from credits.pagination import PageArgs, paginate

bp = Blueprint("notifications", __name__, template_folder="templates")


class InboxArgs(PageArgs):
    class Meta:
        unknown = EXCLUDE  # ?lang=en and the like

    unread = fields.Boolean(load_default=False)


class ReadForm(PageArgs):
    class Meta:
        unknown = EXCLUDE  # the CSRF token

    id = Id(load_default=None)


@bp.app_context_processor
def unread_badge():
    def unread_messages() -> int:
        return services.unread_count(current_user) if current_user.is_authenticated else 0

    return {"unread_messages": unread_messages}


@bp.get("/me/notifications")
@login_required
def inbox():
    args = InboxArgs().load(request.args)
    page = paginate(services.notifications_of(current_user, unread=args["unread"]), args["page"], args["per_page"])
    locale = str(get_locale())
    rendered = {note.id: services.title_and_body(note, locale) for note in page["items"]}
    return render_template("notifications/inbox.html", page=page, rendered=rendered, unread=args["unread"])


@bp.post("/me/notifications/read")
@login_required
def mark_read():
    """One message (`id`) or all of them; back to the inbox page the button was on."""
    form = ReadForm().load(request.form)
    services.mark_read(user=current_user, ids=[form["id"]] if form["id"] else None)
    db.session.commit()
    if form["id"] is None:
        flash(_("已全部标为已读。"), "success")
    return redirect(url_for(".inbox", page=form["page"] if form["page"] > 1 else None))


@bp.route("/me/notification-settings", methods=["GET", "POST"])
@login_required
def settings():
    if request.method == "POST":
        services.update_sms_settings({kind: request.form.get(kind) == "on" for kind in KINDS}, user=current_user)
        db.session.commit()
        flash(_("短信设置已保存。"), "success")
        return redirect(url_for(".settings"))
    return render_template("notifications/settings.html", sms=services.sms_settings(current_user), kinds=KINDS)


class DeliveryArgs(PageArgs):
    class Meta:
        unknown = EXCLUDE

    status = fields.String(load_default=DeliveryStatus.FAILED.value,
                           validate=validate.OneOf(["", *DeliveryStatus]))


@bp.get("/admin/deliveries")
@role_required(Role.ADMIN)
def admin_deliveries():
    """SMS that failed for good (and, by status, the rest), with their last error."""
    args = DeliveryArgs().load(request.args)
    page = paginate(services.deliveries(status=args["status"] or None), args["page"], args["per_page"])
    return render_template("notifications/admin_deliveries.html", page=page, status=args["status"],
                           counts=services.delivery_counts())


@bp.post("/admin/deliveries/<int:delivery_id>/retry")
@role_required(Role.ADMIN)
def admin_retry(delivery_id: int):
    services.retry_delivery(delivery_id, actor=current_user)
    db.session.commit()
    flash(_("已重新排队发送。"), "success")
    return redirect(url_for(".admin_deliveries"))
