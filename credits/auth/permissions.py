"""Route guards. Per-object checks live in the services, next to the rules they protect."""

from __future__ import annotations

import functools
from collections.abc import Callable

from flask import g, request
from flask_login import AnonymousUserMixin, current_user

from credits.auth.services import token_from_header
from credits.errors import Forbidden, Unauthorized


def sign_in_bearer() -> None:
    """An API request's user: the bearer token's, or anonymous — the API ignores cookies, whatever the session says.
    Run before every API view (credits.register_security), or by a view marked `signs_in_itself`."""
    g.api_token = token_from_header(request.headers.get("Authorization"))
    g._login_user = g.api_token.user if g.api_token else AnonymousUserMixin()


def signs_in_itself(view: Callable) -> Callable:
    """Marks an API view that calls `sign_in_bearer()` itself, after what it can answer from the token alone (a full
    project's refusal to a flash crowd, before anyone is loaded). Put it right under the route decorator."""
    view.signs_in_itself = True
    return view


def require_role(*roles: str) -> None:
    """Signed in (by session for pages, by bearer token for the API) and, if roles are named, holding one."""
    if not current_user.is_authenticated:
        raise Unauthorized()
    if roles and not current_user.has_role(*roles):
        raise Forbidden()


def role_required(*roles: str) -> Callable:
    """`require_role` before the view."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            require_role(*roles)
            return view(*args, **kwargs)

        return wrapper

    return decorator


login_required = role_required()

# The OpenAPI security requirement of routes that need a bearer token.
BEARER = [{"bearer": []}]
