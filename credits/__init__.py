"""公益币: volunteer hours, public-welfare coins and merchant redemption. The app factory."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from flask import Flask, abort, has_request_context, request, session
from flask_login import AnonymousUserMixin

from credits.config import Config, config_from_env
from credits.database import configure_engine, end_session, retrying
from credits.errors import register_errorhandlers
from credits.extensions import api, babel, csrf, db, limiter, login_manager, migrate
from credits.fields import MAX_ID
from credits.gate import register_gate
from credits.observability import register_observability, request_id

READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def register_id_range(app: Flask) -> None:
    """A number in the URL past the id columns' range names no row: 404, like any other missing object, before a
    view runs its query into an overflow. (Werkzeug's `max` on the converter would make such a URL match no rule,
    and a rule for the same path with another method then turns it into a 405.)"""

    @app.url_value_preprocessor
    def ids_in_range(_endpoint, values):
        if values and any(isinstance(value, int) and value > MAX_ID for value in values.values()):
            abort(404)


def create_app(config: type[Config] | None = None, overrides: Mapping | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True, static_folder="web/static",
                template_folder="web/templates")
    config = config or config_from_env()
    app.config.from_object(config)
    app.config.update(overrides or {})
    config.finalize(app)
    register_logging(app)
    register_observability(app)
    register_proxy(app)
    register_extensions(app)
    register_template_filters(app)
    register_blueprints(app)
    register_id_range(app)
    register_errorhandlers(app)
    register_gate(app)
    register_security(app)
    register_commands(app)
    register_ledger_checks(app)
    register_retry(app)
    return app


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _escaped(value):
    if isinstance(value, str) and _CONTROL.search(value):
        return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", value)
    return value


def _escaping_record_factory(factory):
    """Log records that carry the request's id, and whose arguments (a request path, a phone, a name: anything a
    client sends) have their control characters escaped, so that a newline in a URL cannot forge a log line. The
    format string and the traceback are the program's own and stay as they are."""
    if getattr(factory, "escapes_controls", False):
        return factory

    def make_record(*args, **kwargs):
        record = factory(*args, **kwargs)
        record.request_id = request_id()
        if isinstance(record.args, tuple):
            record.args = tuple(_escaped(arg) for arg in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {key: _escaped(value) for key, value in record.args.items()}
        return record

    make_record.escapes_controls = True
    return make_record


def register_logging(app: Flask) -> None:
    logging.setLogRecordFactory(_escaping_record_factory(logging.getLogRecordFactory()))
    if app.debug or app.testing:
        return
    handler = logging.StreamHandler()
    if app.config["LOG_FORMAT"] == "json":  # one object a line, for the journal or a log shipper to index
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                                           rename_fields={"asctime": "time", "levelname": "level"}))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])


def register_proxy(app: Flask) -> None:
    """Take the client's address and scheme from the proxies in front (X-Forwarded-For, -Proto), as many as
    TRUSTED_PROXY_COUNT says; headers from anyone else are ignored."""
    count = app.config["TRUSTED_PROXY_COUNT"]
    if count:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count)


def select_locale() -> str | None:
    if not has_request_context():  # a service raising a DomainError from the CLI or a background job
        return None  # the default locale
    lang = request.args.get("lang") or session.get("lang")
    if lang in ("zh_CN", "en"):
        return lang
    if request.path.startswith("/api/"):
        return "en" if request.accept_languages.best_match(["zh_CN", "zh", "en"]) == "en" else "zh_CN"
    return "zh_CN"


def register_extensions(app: Flask) -> None:
    from credits import models  # noqa: F401  (every model, so Alembic and create_all see them)
    from credits.notifications import dispatch  # noqa: F401  (its after-commit hook hands on new deliveries)

    db.init_app(app)
    app.teardown_appcontext(end_session)  # teardowns run last-registered first: this one before Flask-SQLAlchemy's
    with app.app_context():
        configure_engine(db.engine)
    migrate.init_app(app, db, directory=str(app.root_path + "/../migrations"))
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.anonymous_user = AnonymousUserMixin
    csrf.init_app(app)
    limiter.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    api.init_app(app, spec_kwargs={"components": {"securitySchemes": {
        "bearer": {"type": "http", "scheme": "bearer"}}}})


def register_template_filters(app: Flask) -> None:
    from credits.timeutil import duration

    app.add_template_filter(duration, "duration")


def register_blueprints(app: Flask) -> None:
    from credits.admin.views import bp as admin_bp
    from credits.auth.api import blp as auth_api
    from credits.auth.views import bp as auth_bp
    from credits.hours.api import blp as hours_api
    from credits.hours.views import bp as hours_bp
    from credits.merchants.api import blp as merchants_api
    from credits.merchants.views import bp as merchants_bp
    from credits.notifications.api import blp as notifications_api
    from credits.notifications.views import bp as notifications_bp
    from credits.organizations.api import blp as organizations_api
    from credits.organizations.views import bp as organizations_bp
    from credits.projects.api import blp as projects_api
    from credits.projects.calendar_views import bp as calendar_bp
    from credits.projects.views import bp as projects_bp
    from credits.reports.api import blp as reports_api
    from credits.reports.views import bp as reports_bp
    from credits.reviews.api import blp as reviews_api
    from credits.reviews.views import bp as reviews_bp
    from credits.share.api import blp as share_api
    from credits.share.views import bp as share_bp
    from credits.web import large_mode  # noqa: F401  (its view and context processor join web's blueprint)
    from credits.web.views import bp as web_bp

    app.register_blueprint(web_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(projects_bp)
    app.register_blueprint(calendar_bp)
    app.register_blueprint(hours_bp)
    app.register_blueprint(merchants_bp)
    app.register_blueprint(reports_bp)
    app.register_blueprint(reviews_bp)
    app.register_blueprint(share_bp)
    app.register_blueprint(notifications_bp)
    app.register_blueprint(organizations_bp)
    for blp in (auth_api, projects_api, hours_api, merchants_api, reports_api, reviews_api, share_api,
                notifications_api, organizations_api):
        api.register_blueprint(blp, url_prefix="/api/v1")


def register_security(app: Flask) -> None:
    """CSRF on every form outside the API, bearer tokens (and only them) inside it, and security headers."""
    from credits.auth.permissions import sign_in_bearer
    from credits.auth.sessions import register_sessions

    register_sessions(app)

    @app.before_request
    def authenticate_api():
        if request.path.startswith("/api/"):
            if not getattr(app.view_functions.get(request.endpoint), "signs_in_itself", False):
                sign_in_bearer()
        elif request.method not in READ_ONLY_METHODS:
            csrf.protect()

    @app.after_request
    def security_headers(response):
        style = "'self' 'unsafe-inline'" if request.path == "/api/docs" else "'self'"
        response.headers.setdefault(
            "Content-Security-Policy",
            f"default-src 'self'; script-src 'self'; style-src {style}; img-src 'self' data:; "
            "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if app.config["SESSION_COOKIE_SECURE"]:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response


def register_commands(app: Flask) -> None:
    from credits.cli import credits_cli

    app.cli.add_command(credits_cli)


def register_ledger_checks(app: Flask) -> None:
    """Invariants that features holding coin-related state add to `verify-ledger`."""
    from credits.hours.verify import check_credit_states, check_debts
    from credits.merchants.verify import check_escrow

    app.extensions["ledger_checks"] = [check_credit_states, check_debts, check_escrow]


def register_retry(app: Flask) -> None:
    """Every view is one unit of work: a serialization failure or deadlock replays it (see database.py)."""
    for endpoint, view in list(app.view_functions.items()):
        if endpoint != "static":
            app.view_functions[endpoint] = retrying(view)
