"""Route guards. Per-object checks live in the services, next to the rules they protect."""

from __future__ import annotations

import functools
from collections.abc import Callable

from flask_login import current_user

from credits.errors import Forbidden, Unauthorized


def role_required(*roles: str) -> Callable:
    """Signed in (by session for pages, by bearer token for the API) and, if roles are named, holding one."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            if not current_user.is_authenticated:
                raise Unauthorized()
            if roles and not current_user.has_role(*roles):
                raise Forbidden()
            return view(*args, **kwargs)

        return wrapper

    return decorator


login_required = role_required()

# The OpenAPI security requirement of routes that need a bearer token.
BEARER = [{"bearer": []}]
