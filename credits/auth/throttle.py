"""Rate limits: sign-in throttling, registration per address, and per-user limits on actions that bots or guessing
would abuse.

Sign-in attempts are counted before the password is checked, atomically (the limiter's test-and-increment), so
sixty at once cannot all be checked against a limit of five; an attempt that did not fail (a success, or input
refused before any password was compared) is given back afterwards. Three limits, shared by the sign-in page and
the token endpoint:
- per address, strict: LOGIN_ADDRESS_LIMIT (5 in 15 minutes) whatever the phones;
- per address and phone, over a longer window: LOGIN_ACCOUNT_LIMIT (10 a day), so that one address cannot keep
  guessing one phone's password a window at a time;
- per phone from anywhere: LOGIN_PHONE_LIMIT (20 an hour), slowing guessers spread over many addresses. A browser
  the phone's owner has signed in from before (on the sign-in page) carries a signed device cookie naming the
  phone, and is exempt: a stranger's wrong guesses cannot lock the owner out of their own phone (OWASP's
  device-cookie defence). API clients take no cookies and have no such exemption."""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import time

from flask import after_this_request, current_app, g, request
from flask_limiter.util import get_remote_address
from flask_login import current_user
from itsdangerous import BadSignature, URLSafeSerializer
from limits import RateLimitItem, parse, parse_many
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter, RateLimiter

from credits.errors import RateLimited
from credits.extensions import limiter

log = logging.getLogger(__name__)

DEVICE_COOKIE = "credits_device"
DEVICE_COOKIE_DAYS = 365
DEVICE_PHONES = 5  # the phones a shared family tablet remembers


def submitted_phone() -> str:
    data = request.get_json(silent=True) if request.is_json else request.form
    phone = data.get("phone") if isinstance(data, dict) or hasattr(data, "get") else None
    return str(phone).strip()[:20] if phone else "-"


def _phone_tag(phone: str) -> str:
    """What the device cookie keeps of a phone: enough to recognise it, not the number itself."""
    return hashlib.sha256(f"{current_app.secret_key}:{phone}".encode()).hexdigest()[:16]


def _device_serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key, salt="sign-in-device")


def _device_phones() -> list[str]:
    try:
        tags = _device_serializer().loads(request.cookies.get(DEVICE_COOKIE, ""))
    except BadSignature:
        return []
    return tags if isinstance(tags, list) else []


def _known_device() -> bool:
    """Only the sign-in page knows devices: the API takes no cookies, so its clients are never exempt."""
    return not request.path.startswith("/api/") and _phone_tag(submitted_phone()) in _device_phones()


def remember_device(phone: str) -> None:
    """After a successful sign-in: this browser is one the phone's owner uses."""
    tags = [_phone_tag(phone)] + [tag for tag in _device_phones() if tag != _phone_tag(phone)]
    value = _device_serializer().dumps(tags[:DEVICE_PHONES])

    @after_this_request
    def set_cookie(response):
        response.set_cookie(DEVICE_COOKIE, value, max_age=DEVICE_COOKIE_DAYS * 24 * 3600, httponly=True,
                            samesite="Lax", secure=current_app.config["SESSION_COOKIE_SECURE"])
        return response


def _config(key: str):
    return lambda: current_app.config[key]


# Redis away: the limits counted here go to this process's memory for as long as it does not answer (each count
# tries Redis first), as Flask-Limiter does for the limits declared through it (RATELIMIT_IN_MEMORY_FALLBACK_ENABLED).
_memory_limiter = FixedWindowRateLimiter(MemoryStorage())


def _hit(item: RateLimitItem, *identifiers: str, cost: int = 1) -> tuple[bool, RateLimiter]:
    try:
        return limiter.limiter.hit(item, *identifiers, cost=cost), limiter.limiter
    except Exception:  # noqa: BLE001  (any storage failure: redis-py's, or a timeout)
        log.warning("rate limits: storage unreachable, counting in memory")
        return _memory_limiter.hit(item, *identifiers, cost=cost), _memory_limiter


def _refused(item: RateLimitItem, identifiers: tuple[str, ...], strategy: RateLimiter) -> RateLimited:
    """The refusal of a request past `item`, with the seconds until its window resets as Retry-After."""
    try:
        reset = strategy.get_window_stats(item, *identifiers).reset_time
    except Exception:  # noqa: BLE001  (the storage went away since: the whole window)
        reset = time.time() + item.get_expiry()
    return RateLimited(retry_after=max(1, math.ceil(reset - time.time())))


def _sign_in_limits() -> list[tuple[RateLimitItem, str, str]]:
    address, phone = get_remote_address(), submitted_phone()
    config = current_app.config
    limits = [(parse(config["LOGIN_ADDRESS_LIMIT"]), "login-address", address),
              (parse(config["LOGIN_ACCOUNT_LIMIT"]), "login-account", f"{address}:{phone}")]
    if not _known_device():
        limits.append((parse(config["LOGIN_PHONE_LIMIT"]), "login-phone", phone))
    return limits


def login_throttled(view):
    """Count the attempt against every sign-in limit before the view checks the password; refuse it (429, with
    Retry-After) past any of them. Views set g.login_failed when the phone and password did not match; every other
    attempt, and a refused one, is given back when the view is done."""

    @functools.wraps(view)
    def counted(*args, **kwargs):
        if request.method != "POST":
            return view(*args, **kwargs)
        taken: list[tuple[RateLimitItem, tuple[str, str], RateLimiter]] = []
        refused = None
        try:
            for item, scope, key in _sign_in_limits():
                allowed, strategy = _hit(item, key, scope)
                taken.append((item, (key, scope), strategy))
                if not allowed:
                    refused = (item, (key, scope), strategy)
                    break
            if refused:
                raise _refused(*refused)
            return view(*args, **kwargs)
        finally:
            if refused or not g.get("login_failed"):
                for item, identifiers, strategy in taken:
                    try:
                        strategy.hit(item, *identifiers, cost=-1)
                    except Exception:  # noqa: BLE001  (a count not given back only expires with its window)
                        log.warning("sign-in limits: could not give back an attempt")

    return counted


def registration_limited(view):
    """Accounts created from one address (page and API together): each costs a password hash, and bots pay."""
    return limiter.shared_limit(_config("REGISTER_RATE_LIMIT"), scope="register", key_func=get_remote_address,
                                methods=["POST"])(view)


@functools.lru_cache(maxsize=32)
def _limit(text: str) -> RateLimitItem:
    return parse(text)


def count_per_user(config_key: str, scope: str) -> None:
    """Count one action of the signed-in user against the limit in config[config_key] (one counter per scope,
    shared by page and API); raise RateLimited (with Retry-After) past it. `limits` is called directly: one
    Redis call, none of Flask-Limiter's per-request resolution of route limits (a flash claim's path pays for
    every step)."""
    config = current_app.config
    if not config["RATELIMIT_ENABLED"]:
        return
    item, identifiers = _limit(config[config_key]), (f"user:{current_user.id}", scope)
    allowed, strategy = _hit(item, *identifiers)
    if not allowed:
        raise _refused(item, identifiers, strategy)


def per_user_limit(config_key: str, scope: str, methods: list[str] | None = None):
    """`count_per_user` before the view (for `methods`, or every method). Apply it inside the sign-in
    requirement, so current_user is known."""

    def decorator(view):
        @functools.wraps(view)
        def limited(*args, **kwargs):
            if methods is None or request.method in methods:
                count_per_user(config_key, scope)
            return view(*args, **kwargs)

        return limited

    return decorator


def count_claim() -> None:
    """The claim limit (CLAIM_RATE_LIMIT), one counter for page and API, counted once a request is past the cheap
    refusal of a full project (the API's view calls it; the page's through `projects.services.claim_by_id`)."""
    count_per_user("CLAIM_RATE_LIMIT", "claim")


# Changing the password checks the current one: attempts are limited per user, page and API together.
password_change_limited = per_user_limit("PASSWORD_CHANGE_RATE_LIMIT", scope="password-change", methods=["POST"])


def count_sms_code(phone: str) -> None:
    """Count a request for a verification code against SMS_CODE_LIMITS, per phone and per address; raise
    RateLimited (with Retry-After) past any of them. Counted whether or not a text is then sent, so that the limits
    say nothing about whether the phone is registered. A refused request is not counted."""
    address = get_remote_address()
    taken: list[tuple[RateLimitItem, tuple[str, str], RateLimiter]] = []
    for item in parse_many(current_app.config["SMS_CODE_LIMITS"]):
        for scope, key in (("sms-code-phone", phone), ("sms-code-address", address)):
            allowed, strategy = _hit(item, key, scope)
            taken.append((item, (key, scope), strategy))
            if allowed:
                continue
            for given_item, identifiers, given_strategy in taken:
                try:
                    given_strategy.hit(given_item, *identifiers, cost=-1)
                except Exception:  # noqa: BLE001  (a count not given back only expires with its window)
                    log.warning("sms code limits: could not give back a request")
            raise _refused(item, (key, scope), strategy)
