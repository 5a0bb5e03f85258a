"""JSON API for the signed-in person's messages and SMS settings."""

from __future__ import annotations

from flask_login import current_user
from flask_smorest import Blueprint

from credits.auth.permissions import BEARER, login_required
from credits.extensions import db
from credits.notifications import services
from credits.notifications.schemas import (
    NotificationListArgs,
    NotificationOut,
    ReadIn,
    SmsSettingsIn,
    SmsSettingsOut,
)
from credits.pagination import page_schema, paginate

blp = Blueprint("notifications_api", __name__, description="Messages (站内消息) and SMS settings")


@blp.get("/me/notifications")
@login_required
@blp.arguments(NotificationListArgs, location="query")
@blp.response(200, page_schema(NotificationOut))
@blp.doc(security=BEARER)
def notifications(args):
    """The signed-in person's messages, newest first; `unread=true` for the unread ones only."""
    return paginate(services.notifications_of(current_user, unread=args["unread"]), args["page"], args["per_page"])


@blp.post("/me/notifications/read")
@login_required
@blp.arguments(ReadIn)
@blp.response(204)
@blp.doc(security=BEARER)
def mark_read(data):
    """Mark messages read: the given ids (all of them the caller's, else 404 and nothing changes), or all."""
    services.mark_read(user=current_user, ids=data.get("ids"))
    db.session.commit()


@blp.get("/me/notification-settings")
@login_required
@blp.response(200, SmsSettingsOut)
@blp.doc(security=BEARER)
def settings():
    return {"sms": services.sms_settings(current_user)}


@blp.put("/me/notification-settings")
@login_required
@blp.arguments(SmsSettingsIn)
@blp.response(200, SmsSettingsOut)
@blp.doc(security=BEARER)
def update_settings(data):
    """Choose per kind whether messages also come by SMS; kinds not named keep their setting."""
    sms = services.update_sms_settings(data["sms"], user=current_user)
    db.session.commit()
    return {"sms": sms}
