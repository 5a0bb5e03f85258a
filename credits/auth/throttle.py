"""Rate limits: sign-in throttling (5 failures in 15 minutes per phone and per address, shared by the sign-in page
and the token endpoint; only failed attempts count: views set g.login_failed) and per-user limits on actions that
bots or guessing would abuse."""

from __future__ import annotations

from flask import current_app, g, request
from flask_limiter.util import get_remote_address
from flask_login import current_user

from credits.extensions import limiter


def _phone() -> str:
    data = request.get_json(silent=True) if request.is_json else request.form
    phone = data.get("phone") if isinstance(data, dict) or hasattr(data, "get") else None
    return f"phone:{str(phone).strip()[:20]}" if phone else "phone:-"


def _limit() -> str:
    return current_app.config["LOGIN_FAILURE_LIMIT"]


def _failed(_response) -> bool:
    return bool(g.get("login_failed"))


def login_throttled(view):
    view = limiter.shared_limit(_limit, scope="login-phone", key_func=_phone, deduct_when=_failed,
                                methods=["POST"])(view)
    return limiter.shared_limit(_limit, scope="login-address", key_func=get_remote_address,
                                deduct_when=_failed, methods=["POST"])(view)


def per_user_limit(config_key: str, scope: str):
    """A limit from the config, counted per signed-in user and shared by every view it decorates (page and API).
    Apply it inside the sign-in requirement, so current_user is known."""

    def decorator(view):
        return limiter.shared_limit(lambda: current_app.config[config_key], scope=scope,
                                    key_func=lambda: f"user:{current_user.id}")(view)

    return decorator
