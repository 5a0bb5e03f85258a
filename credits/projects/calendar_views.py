"""The calendar feed's URL, and making or revoking it from the account page."""

from __future__ import annotations

from flask import Blueprint, Response, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from credits.auth.permissions import login_required
from credits.extensions import db
from credits.projects import calendar

bp = Blueprint("calendar", __name__)


@bp.get("/calendar/<token>.ics")
def feed(token: str):
    owner = calendar.feed_owner(token)
    body = calendar.feed(owner, base_url=request.host_url.rstrip("/"))
    # Private to whoever holds the URL: no cache on the way keeps a copy.
    return Response(body, mimetype="text/calendar", headers={"Cache-Control": "private, no-store"})


@bp.post("/account/calendar")
@login_required
def make_token():
    token = calendar.new_token(actor=current_user)
    db.session.commit()
    url = url_for("calendar.feed", token=token, _external=True)
    flash(_("日历订阅链接（仅显示这一次，请复制到手机日历的“添加订阅”中）：%(url)s", url=url), "success")
    return redirect(url_for("auth.account"))


@bp.post("/account/calendar/revoke")
@login_required
def revoke_token():
    calendar.revoke_token(actor=current_user)
    db.session.commit()
    flash(_("日历订阅链接已停用。"), "success")
    return redirect(url_for("auth.account"))
