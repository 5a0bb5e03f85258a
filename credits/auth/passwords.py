"""Password hashing and the rules a new password must meet.

Hashing is argon2id at OWASP's first recommended configuration (Password Storage Cheat Sheet: m=19 MiB, t=2, p=1),
measured here at about 40 ms a hash on one core of this 2-core machine, against about 240 ms for argon2-cffi's
defaults (RFC 9106's low-memory profile: 64 MiB, t=3, p=4), which let 80 registrations at once hold every worker
for seconds (docs/benchmarks.md, registration burst). Hashes made with other parameters still verify, and are
rehashed with these at the next successful sign-in."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from flask_babel import gettext as _
from zxcvbn.frequency_lists import FREQUENCY_LISTS

PROFILES = {
    "owasp": PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1),
    "rfc9106-low": PasswordHasher(),  # argon2-cffi's defaults: the parameters used before; kept for the benchmark
    # Tests create hundreds of users; they hash at the lowest cost. The production path never takes this one.
    "fast": PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),
}
# Compared against when the phone is unknown, so a miss costs the same time as a wrong password.
_DUMMY_HASHES = {name: hasher.hash("no such user") for name, hasher in PROFILES.items()}

# The most common passwords, as ranked in the lists zxcvbn ships (Burnett's 10 million passwords): the first 10,000.
COMMON_COUNT = 10_000


def _profile() -> str:
    return "fast" if current_app.config.get("PASSWORD_HASH_FAST") else current_app.config["PASSWORD_HASH"]


def hash_password(password: str) -> str:
    return PROFILES[_profile()].hash(password)


def check_password(password_hash: str | None, password: str) -> bool:
    try:
        return PROFILES[_profile()].verify(password_hash or _DUMMY_HASHES[_profile()], password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return PROFILES[_profile()].check_needs_rehash(password_hash)


@cache
def common_passwords() -> frozenset[str]:
    return frozenset(FREQUENCY_LISTS["passwords"][:COMMON_COUNT])


def password_problem(password: str, *, phone: str | None = None, name: str | None = None) -> str | None:
    """Why a new password is refused, or None: one of the 10,000 most common passwords, or made of the account's
    own phone number or name, which anyone who knows the person can guess. (Its length is the schemas' rule.)"""
    lowered = password.lower()
    if lowered in common_passwords():
        return _("这个密码太常见，很容易被猜到，请换一个。")
    if phone and phone in password:
        return _("密码不能包含手机号。")
    if name and name.strip() and name.strip().lower() in lowered:
        return _("密码不能包含姓名。")
    return None
