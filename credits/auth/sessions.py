"""Web sessions end after an idle period (policy: `session_idle_days`, 7 by default; `admin_session_idle_hours`,
12, for anyone with the admin role), and nothing a signed-in person sees is kept by a browser or proxy cache.

The session records when it was last seen, rewritten at most once a minute (so the cookie is not re-sent on every
request, and the policy is read at most once a minute per person). A request past the idle period signs the person
out, remember cookie included, and sends them to the sign-in page. The remember cookie (记住我) lasts the idle
period from sign-in, not 30 days. (Flask-Login's REMEMBER_COOKIE_REFRESH_EACH_REQUEST would slide it, but it also
sets a remember cookie for sessions that never asked for one.)"""

from __future__ import annotations

import time
from datetime import timedelta

from flask import Flask, flash, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_babel import gettext as _
from flask_login import AnonymousUserMixin, current_user, logout_user, user_logged_in

from credits.auth.models import Role, User
from credits.settings.services import get_policy

SEEN_EVERY = 60  # seconds between rewrites of the session's last-seen time


def idle_limit(user: User) -> timedelta:
    policy = get_policy()
    if user.has_role(Role.ADMIN):
        return timedelta(hours=policy["admin_session_idle_hours"])
    return timedelta(days=policy["session_idle_days"])


def _signed_in(_app, **_kwargs) -> None:
    session["seen"] = int(time.time())


class ApiIgnoresCookies(SecureCookieSessionInterface):
    """The API signs in with bearer tokens and ignores cookies: its requests get an empty session without the
    cookie being parsed or its signature checked, and never send one back. Pages keep Flask's signed cookie."""

    def open_session(self, app, request_):
        if request_.path.startswith("/api/"):
            return self.session_class()
        return super().open_session(app, request_)

    def save_session(self, app, session_, response):
        if request.path.startswith("/api/"):
            return
        super().save_session(app, session_, response)


def register_sessions(app: Flask) -> None:
    app.session_interface = ApiIgnoresCookies()
    user_logged_in.connect(_signed_in, app)

    @app.before_request
    def end_idle_sessions():
        if request.path.startswith(("/api/", "/static/")) or not current_user.is_authenticated:
            return None  # the API signs in with tokens, which have their own lifetime
        now = int(time.time())
        seen = session.get("seen")
        if seen is not None and now - seen < SEEN_EVERY:
            return None
        if seen is not None and now - seen > idle_limit(current_user).total_seconds():
            logout_user()
            session.pop("seen", None)
            flash(_("您已较长时间未使用，为保护账号已自动退出，请重新登录。"), "info")
            return redirect(url_for("auth.login", next=request.full_path if request.method == "GET" else None))
        session["seen"] = now
        return None

    @app.after_request
    def no_store_for_signed_in(response):
        # Loaded only if the request used it: a page that did not has no one's data. Its attributes are not read
        # here (after an error they are expired, and reading them would query a database that may be away).
        user = g.get("_login_user")
        signed_in = user is not None and not isinstance(user, AnonymousUserMixin)
        # A bearer request's answer is the token holder's, even one given before they were signed in (a full
        # project's refusal, `permissions.signs_in_itself`).
        if signed_in or request.path.startswith("/api/v1/me") or "Authorization" in request.headers:
            response.headers["Cache-Control"] = "no-store"
        return response
