"""Configuration read from the environment (SPEC 3.1)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def _instance_secret(instance_path: str) -> str:
    """Return the development secret key, generating it into instance/ the first time."""
    path = Path(instance_path) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


class Config:
    """Development defaults: SQLite under instance/, a generated secret, cookies without Secure."""

    ENV_NAME = "development"
    SQLALCHEMY_DATABASE_URI: str | None = os.environ.get("DATABASE_URL")
    SECRET_KEY: str | None = os.environ.get("SECRET_KEY")
    REDIS_URL: str | None = os.environ.get("REDIS_URL")
    CREDITS_TIMEZONE = os.environ.get("CREDITS_TIMEZONE", "Asia/Shanghai")
    # Behind nginx every request comes from the proxy's address: without trusting its X-Forwarded-For the
    # per-address sign-in throttle would lock out the whole town after five typos, and the audit trail would
    # record the proxy. Only set it to the number of proxies in front, or clients could forge their address.
    TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT") or 0)

    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True}
    DB_RETRIES = 8
    # Seconds a request replays a unit of work after conflicts before it gives up with 503. With
    # SQLITE_BUSY_TIMEOUT it keeps a request that cannot get SQLite's write lock under gunicorn's timeout (30 s), so
    # it answers 503 instead of being killed mid-wait, and the worker is free for the reads meanwhile.
    DB_RETRY_SECONDS = 15
    SQLITE_BUSY_TIMEOUT = 10

    # argon2id parameters (credits/auth/passwords.py): "owasp", or "rfc9106-low" (the earlier, costlier default).
    PASSWORD_HASH = os.environ.get("PASSWORD_HASH", "owasp")

    BABEL_DEFAULT_LOCALE = "zh_CN"
    BABEL_DEFAULT_TIMEZONE = "Asia/Shanghai"
    LANGUAGES = ("zh_CN", "en")

    # No form or API body comes near this (the largest is a bulk review of ids); anything larger is refused with
    # 413 before it is read. deploy/nginx.conf stops the same size at the proxy.
    MAX_CONTENT_LENGTH = 2 * 1024 * 1024

    WTF_CSRF_CHECK_DEFAULT = False  # checked in a before_request for every non-API path
    WTF_CSRF_TIME_LIMIT = None

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = False
    REMEMBER_COOKIE_DURATION = 30 * 24 * 3600  # at sign-in it is the idle period instead (auth/sessions.py)

    RATELIMIT_ENABLED = True
    # X-RateLimit-* headers would cost every limited request two more Redis round trips (GET and TTL) after the
    # one that counts it: in a flash crowd of claims that is time taken from the claims. A 429 says when to retry.
    RATELIMIT_HEADERS_ENABLED = False
    # Redis away: count in each process's memory until it answers again (checked with backoff), rather than
    # answer 500 to every sign-in, claim and redemption. The limits hold per worker meanwhile, so they are looser.
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    # Failed sign-ins (credits/auth/throttle.py): per address; per address and phone, over a day; per phone from
    # browsers its owner has not signed in from.
    LOGIN_ADDRESS_LIMIT = "5 per 15 minutes"
    LOGIN_ACCOUNT_LIMIT = "10 per day"
    LOGIN_PHONE_LIMIT = "20 per hour"
    REGISTER_RATE_LIMIT = "10 per hour"
    PASSWORD_CHANGE_RATE_LIMIT = "5 per 15 minutes"  # each checks the current password: a guessing machine else
    CLAIM_RATE_LIMIT = "20 per minute"
    CHECKIN_RATE_LIMIT = "10 per minute"
    REDEEM_RATE_LIMIT = "30 per minute"
    # Activation links of imported members (credits/organizations), per address: the tokens cannot be guessed;
    # this keeps anyone from trying.
    ACTIVATION_RATE_LIMIT = "60 per 10 minutes"
    # Posters per address: each new one costs a drawing (about 0.1 s); a storm of requests meets 429s.
    POSTER_RATE_LIMIT = os.environ.get("POSTER_RATE_LIMIT", "30 per minute")

    # Share cards and QR codes carry absolute URLs: the address people outside reach the site at. Unset, the
    # request's own host is used (right when nothing in front rewrites it).
    PUBLIC_BASE_URL: str | None = os.environ.get("PUBLIC_BASE_URL")
    # A font with Chinese glyphs for the posters; unset, fontconfig or a known path finds one (credits/share).
    POSTER_FONT: str | None = os.environ.get("POSTER_FONT")
    POSTER_CACHE_DIR: str | None = os.environ.get("POSTER_CACHE_DIR")  # default: instance/posters

    # Logs to stderr: "json" (one object a line, with the request id) or "text" for reading in a terminal.
    LOG_FORMAT = os.environ.get("LOG_FORMAT", "text")
    # /metrics answers this bearer token; unset, it answers scrapers on this host only.
    METRICS_TOKEN: str | None = os.environ.get("METRICS_TOKEN")
    # SMS verification codes (credits/auth/codes.py), each limit counted per phone and per address alike.
    SMS_CODE_LIMITS = "1 per minute; 10 per day"
    # The `phone_verification` policy until an admin sets it. TestConfig turns it off for the tests that register
    # users without being about codes; the tests of codes turn it on.
    PHONE_VERIFICATION_DEFAULT = "required"

    # Messages (credits/notifications): where SMS go (console, file:PATH); without REDIS_URL they are sent in
    # this process after commit, in a thread ("thread") or before the response ("sync", for tests).
    SMS_BACKEND = os.environ.get("SMS_BACKEND", "console")
    SMS_INLINE = "thread"
    # SMS_BACKEND=tencent: Tencent Cloud SMS (credits/notifications/tencent.py); a provider slower than this fails the
    # attempt, which is retried.
    SMS_PROVIDER_TIMEOUT = 5
    TENCENT_SMS_ENDPOINT = os.environ.get("TENCENT_SMS_ENDPOINT", "https://sms.tencentcloudapi.com")
    TENCENT_SMS_REGION = os.environ.get("TENCENT_SMS_REGION", "ap-guangzhou")
    TENCENT_SECRET_ID = os.environ.get("TENCENT_SECRET_ID")
    TENCENT_SECRET_KEY = os.environ.get("TENCENT_SECRET_KEY")
    TENCENT_SMS_APP_ID = os.environ.get("TENCENT_SMS_APP_ID")
    TENCENT_SMS_SIGN = os.environ.get("TENCENT_SMS_SIGN", "公益币")
    TENCENT_SMS_TEMPLATE_ID = os.environ.get("TENCENT_SMS_TEMPLATE_ID")
    SMS_MAX_ATTEMPTS = 6
    SMS_JOB_TIMEOUT = 60
    # A delivery `sending` this long was left by a dead worker; one queued and not handed on this long, by a lost
    # job or an unreachable Redis. The sweep (every SMS_SWEEP_SECONDS, in the worker) takes both up again.
    SMS_SENDING_TIMEOUT = int(os.environ.get("SMS_SENDING_TIMEOUT") or 300)
    SMS_REQUEUE_AFTER = int(os.environ.get("SMS_REQUEUE_AFTER") or 60)
    SMS_SWEEP_SECONDS = float(os.environ.get("SMS_SWEEP_SECONDS") or 15)
    SMS_SWEEP_BATCH = 1000

    API_TITLE = "公益币 API"
    API_VERSION = "v1"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/api"
    OPENAPI_JSON_PATH = "v1/openapi.json"

    @classmethod
    def finalize(cls, app) -> None:
        """Fill in what depends on the instance folder."""
        cfg = app.config
        if not cfg.get("SQLALCHEMY_DATABASE_URI"):
            cfg["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{Path(app.instance_path) / 'credits.sqlite'}"
        if not cfg.get("SECRET_KEY"):
            cfg["SECRET_KEY"] = _instance_secret(app.instance_path)
        cfg["RATELIMIT_STORAGE_URI"] = cfg.get("REDIS_URL") or "memory://"


class ProductionConfig(Config):
    """Production: secure cookies with the __Host- prefix; refuses to start without SECRET_KEY."""

    ENV_NAME = "production"
    SESSION_COOKIE_SECURE = True
    SESSION_COOKIE_NAME = "__Host-session"
    REMEMBER_COOKIE_SECURE = True
    REMEMBER_COOKIE_NAME = "__Host-remember"
    LOG_FORMAT = os.environ.get("LOG_FORMAT", "json")

    @classmethod
    def finalize(cls, app) -> None:
        if not app.config.get("SECRET_KEY"):
            raise RuntimeError("SECRET_KEY must be set in production")
        if not app.config.get("SQLALCHEMY_DATABASE_URI"):
            raise RuntimeError("DATABASE_URL must be set in production")
        super().finalize(app)


class TestConfig(Config):
    """Tests: a database from TEST_DATABASE_URL (or a temp SQLite set by the fixture), fixed secret."""

    ENV_NAME = "testing"
    TESTING = True
    SECRET_KEY = "test-secret-key"
    SQLALCHEMY_DATABASE_URI = os.environ.get("TEST_DATABASE_URL")
    REDIS_URL = None
    TRUSTED_PROXY_COUNT = 0
    WTF_CSRF_ENABLED = True
    SMS_BACKEND = "console"
    SMS_INLINE = "sync"
    PHONE_VERIFICATION_DEFAULT = "off"
    PASSWORD_HASH_FAST = True  # argon2 at minimum cost keeps the suite quick; production uses the defaults


def config_from_env() -> type[Config]:
    return ProductionConfig if os.environ.get("CREDITS_ENV") == "production" else Config
