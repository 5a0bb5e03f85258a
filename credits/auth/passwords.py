"""Password hashing with argon2id at argon2-cffi's defaults (RFC 9106 low-memory profile, above OWASP's
minimum of m=19 MiB, t=2, p=1)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

_hasher = PasswordHasher()
# Tests create hundreds of users; they hash at the lowest cost. The production path never takes this one.
_fast_hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
# Compared against when the phone is unknown, so a miss costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash("no such user")


def _current() -> PasswordHasher:
    return _fast_hasher if current_app.config.get("PASSWORD_HASH_FAST") else _hasher


def hash_password(password: str) -> str:
    return _current().hash(password)


def check_password(password_hash: str | None, password: str) -> bool:
    try:
        return _current().verify(password_hash or _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return False
