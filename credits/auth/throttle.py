"""Sign-in throttling: 5 failures in 15 minutes per phone and per address, shared by the sign-in page
and the token endpoint. Only failed attempts are counted (views set g.login_failed)."""

from __future__ import annotations

from flask import current_app, g, request
from flask_limiter.util import get_remote_address

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
