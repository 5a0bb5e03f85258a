"""Fixtures: a migrated database per test (SQLite by default, PostgreSQL when TEST_DATABASE_URL is set),
the app, clients and factories."""

from __future__ import annotations

import contextvars
import itertools
import logging
import os
import shutil
import threading
import time

import pytest
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import text

from credits import create_app
from credits.config import TestConfig
from credits.extensions import db, limiter

PG_URL = os.environ.get("TEST_DATABASE_URL")


class IsolatedClient(FlaskClient):
    """A client whose every request runs in its own application context, as in production.

    The `app` fixture keeps an application context pushed for the test body, and Flask would reuse it for
    requests: `g` (Flask-Login's cached user, Babel's locale, the sign-in failure flag) and the database session
    would leak from one request, and one client, into the next.
    """

    def open(self, *args, **kwargs):
        session = db.session
        if session.new or session.dirty or session.deleted:
            raise AssertionError("commit the test's own changes before making a request")
        # End the test body's transaction: its SQLite write lock would block the request, and its objects are
        # reloaded afterwards, so the test sees what the request committed.
        session.rollback()
        # Buffered, so a streamed body (the CSV exports) is read while the request's context is still current.
        kwargs.setdefault("buffered", True)
        return contextvars.Context().run(super().open, *args, **kwargs)


def _make_app(url: str, **overrides):
    app = create_app(TestConfig, {"SQLALCHEMY_DATABASE_URI": url, **overrides})
    app.test_client_class = IsolatedClient
    return app


class OffsetClock:
    """Stands in for the `time` module where a test patches it: time() is the real time moved on by `offset`."""

    offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset


def offset_clock(monkeypatch, *modules) -> OffsetClock:
    clock = OffsetClock()
    for module in modules:
        monkeypatch.setattr(module, "time", clock)
    return clock


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A redis-server of the test session's own, on a free port: the rate limits' real store, where an increment
    is atomic (limits' in-memory store returns a count read after its lock is released, so racers there can all
    see each other's increments). Skips without redis-server, unless CI or CREDITS_E2E_REQUIRED is set."""
    import socket
    import subprocess

    binary = shutil.which("redis-server")
    if binary is None:
        if any(os.environ.get(flag, "").strip().lower() not in ("", "0", "false", "no")
               for flag in ("CI", "CREDITS_E2E_REQUIRED")):
            pytest.fail("redis-server is not installed (apt-get install redis-server)")
        pytest.skip("redis-server is not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    workdir = tmp_path_factory.mktemp("redis")
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                               "no", "--dir", str(workdir)], stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    import redis

    for _ in range(100):
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.exceptions.ConnectionError:
            time.sleep(0.05)
    yield url
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture(scope="session")
def _migrated(tmp_path_factory):
    """Migrate once per session: a template SQLite file to copy, or the PostgreSQL test database."""
    if PG_URL:
        app = _make_app(PG_URL)
        with app.app_context():
            with db.engine.begin() as conn:
                conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
            upgrade()
            db.engine.dispose()
        return PG_URL
    template = tmp_path_factory.mktemp("db") / "template.sqlite"
    app = _make_app(f"sqlite:///{template}")
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return template


def _truncate_postgres(app) -> None:
    with app.app_context():
        tables = ", ".join(t.name for t in db.metadata.sorted_tables)
        with db.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def database_url(_migrated, tmp_path) -> str:
    """A clean, migrated database for this test."""
    if PG_URL:
        return PG_URL
    path = tmp_path / "test.sqlite"
    shutil.copy(_migrated, path)
    return f"sqlite:///{path}"


@pytest.fixture
def app(database_url):
    app = _make_app(database_url)
    if PG_URL:
        _truncate_postgres(app)
    limiter.reset()
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


_phones = itertools.count(13800000000)


@pytest.fixture
def make_user(app):
    """Create and commit a user: make_user(roles=("coordinator",), organization=org, password=...)."""
    from credits.auth.services import create_user

    def factory(*roles: str, name: str = "测试用户", password: str = "gongyi-test-2026", organization=None,
                phone: str | None = None):
        user = create_user(phone=phone or str(next(_phones)), name=name, password=password,
                           roles=roles or ("volunteer",),
                           organization_id=organization.id if organization else None)
        db.session.commit()
        return user

    return factory


@pytest.fixture
def set_policy(make_user):
    """Change policy settings as the town's admin would: set_policy(max_active_claims=1)."""
    from credits.settings.services import update_policy

    admins = []

    def factory(**changes):
        if not admins:
            admins.append(make_user("admin", name="政策管理员"))
        update_policy(changes, actor=admins[0])
        db.session.commit()

    return factory


@pytest.fixture
def make_org(app):
    from credits.auth.models import Organization

    counter = itertools.count(1)

    def factory(name: str | None = None, kind: str = "enterprise"):
        org = Organization(name=name or f"测试组织{next(counter)}", kind=kind)
        db.session.add(org)
        db.session.commit()
        return org

    return factory


@pytest.fixture
def make_merchant(app):
    """Create and commit a shop of the commercial street: make_merchant(name=...)."""
    from credits.merchants.models import Merchant

    counter = itertools.count(1)

    def factory(name: str | None = None, category: str = "car_wash"):
        merchant = Merchant(name=name or f"测试商户{next(counter)}", address="奉城老街", category=category)
        db.session.add(merchant)
        db.session.commit()
        return merchant

    return factory


@pytest.fixture
def org(make_org):
    """The organisation that organises the projects of a test."""
    return make_org("镇卫生院志愿队")


@pytest.fixture
def coordinator(make_user, org):
    return make_user("coordinator", name="李协调", organization=org)


@pytest.fixture
def volunteer(make_user):
    return make_user("volunteer", name="张小明")


@pytest.fixture
def token_for(client):
    """A bearer header for a user, obtained through the API as a client would."""

    def factory(user, password: str = "gongyi-test-2026") -> dict[str, str]:
        response = client.post("/api/v1/auth/token", json={"phone": user.phone, "password": password})
        assert response.status_code == 201, response.json
        return {"Authorization": f"Bearer {response.json['token']}"}

    return factory


def csrf_token(client, path: str = "/login") -> str:
    """The CSRF token a page hands the browser, read from its form."""
    html = client.get(path).get_data(as_text=True)
    marker = 'name="csrf_token" value="'
    start = html.index(marker) + len(marker)
    return html[start:html.index('"', start)]


@pytest.fixture
def login(client):
    """Sign a user in through the HTML form, as a browser would."""

    def factory(user, password: str = "gongyi-test-2026", remember: bool = False):
        data = {"phone": user.phone, "password": password, "csrf_token": csrf_token(client)}
        if remember:
            data["remember"] = "on"
        response = client.post("/login", data=data)
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        return response

    return factory


@pytest.fixture
def browser(app):
    """Another browser with its own cookies, signed in through the HTML form when given a user:
    browser(user), browser(user, remember=True), browser() for one signed out."""

    def factory(user=None, password: str = "gongyi-test-2026", remember: bool = False) -> FlaskClient:
        other = app.test_client()
        if user is not None:
            data = {"phone": user.phone, "password": password, "csrf_token": csrf_token(other)}
            if remember:
                data["remember"] = "on"
            response = other.post("/login", data=data)
            assert response.status_code == 302, response.get_data(as_text=True)[:500]
        return other

    return factory


class RetryCounter(logging.Handler):
    """Counts the conflicts `credits.database.retrying` replays (deadlocks, serialization failures, busy)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("retrying"):
            with self._lock:
                self.count += 1


@pytest.fixture
def retries(request):
    """Counts retries during the test and prints the race's figures (seen with -s)."""
    logger = logging.getLogger("credits.database")
    counter, level = RetryCounter(), logger.level
    logger.addHandler(counter)
    logger.setLevel(logging.INFO)
    started = time.perf_counter()
    yield counter
    logger.removeHandler(counter)
    logger.setLevel(level)
    print(f"\n[race] {request.node.name}: {time.perf_counter() - started:.2f}s, {counter.count} retries")


def pytest_report_header(config):
    return f"database: {'PostgreSQL ' + PG_URL if PG_URL else 'SQLite (a migrated copy per test)'}"


