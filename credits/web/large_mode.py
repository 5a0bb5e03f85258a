"""长辈模式 (large mode): larger text and targets, higher contrast and a simpler header, switched on once and kept.

It lives in a cookie, so a phone keeps it signed out, and on the account, so it follows the person to another phone.
Signed in, the account decides; signing in on a phone where the switch is on turns it on for the account too (the
person just chose it there), and otherwise the phone takes the account's setting.
"""

from __future__ import annotations

from flask import after_this_request, current_app, redirect, request, url_for
from flask_login import current_user
from marshmallow import Schema, fields

from credits.auth import services as auth
from credits.extensions import db
from credits.web.views import bp, local_next

COOKIE = "credits_large"
COOKIE_DAYS = 400  # the longest Chromium keeps a cookie


class LargeModeIn(Schema):
    on = fields.Boolean(required=True)


def is_on() -> bool:
    if current_user.is_authenticated:
        return current_user.large_mode
    return request.cookies.get(COOKIE) == "1"


def _keep_on_this_phone(on: bool) -> None:
    @after_this_request
    def set_cookie(response):
        response.set_cookie(COOKIE, "1" if on else "0", max_age=COOKIE_DAYS * 24 * 3600, httponly=True,
                            samesite="Lax", secure=current_app.config["SESSION_COOKIE_SECURE"])
        return response


def after_sign_in(user) -> None:
    """Called by the sign-in view, inside its unit of work, once `user` is signed in."""
    if request.cookies.get(COOKIE) == "1":
        auth.set_large_mode(user, True, actor=user)
    _keep_on_this_phone(user.large_mode)


@bp.post("/large-mode")
def switch_large_mode():
    on = LargeModeIn().load({"on": request.form.get("on", "")})["on"]
    if current_user.is_authenticated:
        auth.set_large_mode(current_user, on, actor=current_user)
        db.session.commit()
    _keep_on_this_phone(on)
    return redirect(local_next(url_for("web.home")))


@bp.app_context_processor
def large_mode_context():
    return {"large_mode": is_on()}
