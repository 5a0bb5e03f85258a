"""Running behind a proxy and through database outages (docs/deploy.md): the per-address sign-in throttle counts
the client that nginx names, never a forged header, and a database that goes away answers 503 and comes back
without a restart."""

from __future__ import annotations

import sqlite3
import time

import pytest
from sqlalchemy import event

from credits.extensions import db, limiter
from tests.conftest import PG_URL, _make_app

WRONG = "wrong-password"


def sign_in(client, phone: str, forwarded_for: str):
    return client.post("/api/v1/auth/token", json={"phone": phone, "password": WRONG},
                       environ_base={"REMOTE_ADDR": "127.0.0.1"}, headers={"X-Forwarded-For": forwarded_for})


def test_behind_a_trusted_proxy_the_address_throttle_counts_each_client_not_the_proxy(database_url):
    app = _make_app(database_url, TRUSTED_PROXY_COUNT=1)
    with app.app_context():
        limiter.reset()
        client = app.test_client()
        for i in range(5):  # five phones, so only the per-address limit can apply
            assert sign_in(client, f"1390000010{i}", "198.51.100.7").status_code == 401
        assert sign_in(client, "13900000109", "198.51.100.7").status_code == 429
        # Another townsperson behind the same nginx is not locked out by the first one's typos.
        assert sign_in(client, "13900000110", "198.51.100.8").status_code == 401
        db.session.remove()
        db.engine.dispose()


def test_without_a_trusted_proxy_a_forged_forwarded_for_does_not_escape_the_address_throttle(client):
    for i in range(5):
        assert sign_in(client, f"1390000020{i}", f"198.51.100.{i}").status_code == 401
    assert sign_in(client, "13900000209", "198.51.100.99").status_code == 429


def test_while_the_database_is_away_the_app_answers_503_json_and_comes_back_by_itself(app, client, make_user,
                                                                                   token_for):
    """bench/faults.py stops a real PostgreSQL under load; this keeps the same promise in the suite: every new
    connection refused, then allowed again, with the same app (no restart)."""
    headers = token_for(make_user())

    def refuse(*_args, **_kwargs):
        raise db.engine.dialect.loaded_dbapi.OperationalError("connection refused: the database is away")

    db.engine.dispose()  # the pooled connections die with the server
    event.listen(db.engine, "do_connect", refuse)
    try:
        for method, path in (("GET", "/healthz"), ("GET", "/api/v1/me/wallet"), ("POST", "/api/v1/vouchers")):
            response = client.open(path, method=method, headers=headers, json={"service_id": 1})
            assert response.status_code == 503, (path, response.status_code)
            assert response.json["error"]["code"] == "unavailable"
    finally:
        event.remove(db.engine, "do_connect", refuse)
    assert client.get("/healthz").json == {"status": "ok"}
    assert client.get("/api/v1/me/wallet", headers=headers).status_code == 200


@pytest.mark.skipif(PG_URL is not None, reason="SQLite's single write lock")
def test_a_write_that_cannot_get_sqlites_lock_answers_503_in_time_while_reads_go_on(database_url, tmp_path):
    """Another writer holds the lock longer than a request may wait: the write gives up within the busy timeout
    plus the retry budget (scaled down here from 10 s + 15 s, which keep it under gunicorn's 30 s) with 503 JSON,
    and reads are answered meanwhile."""
    app = _make_app(database_url, SQLITE_BUSY_TIMEOUT=0.2, DB_RETRY_SECONDS=0.5)
    with app.app_context():
        from credits.auth.services import create_user, issue_token

        token, _ = issue_token(create_user(phone="13900000301", name="志愿者", password="gongyi-test-2026"))
        db.session.commit()
        headers = {"Authorization": f"Bearer {token}"}
        client = app.test_client()
        holder = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            started = time.monotonic()
            response = client.post("/api/v1/vouchers", headers=headers, json={"service_id": 1})
            waited = time.monotonic() - started
            assert response.status_code == 503 and response.json["error"]["code"] == "unavailable"
            assert waited < 2
            assert client.get("/api/v1/me/wallet", headers=headers).status_code == 200
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert client.post("/api/v1/vouchers", headers=headers, json={"service_id": 1}).status_code == 404
        db.session.remove()
        db.engine.dispose()


def test_with_redis_away_sign_ins_are_answered_and_still_throttled_in_memory(database_url):
    app = _make_app(database_url, REDIS_URL="redis://127.0.0.1:1/0")  # nothing listens on port 1
    try:
        with app.app_context():
            client = app.test_client()
            statuses = [sign_in(client, "13900000401", f"198.51.100.{i}").status_code for i in range(6)]
            assert statuses == [401] * 5 + [429]
            db.session.remove()
            db.engine.dispose()
    finally:
        # The limiter is one object for every app of the process: the next test's app starts with live storage.
        limiter._storage_dead = False


def test_while_the_database_is_away_a_signed_in_person_gets_the_503_page_not_a_500(app, browser, make_user):
    """The pages' header reads the person (their roles, 长辈模式, unread messages) from the database: with the
    database away the error page must still be drawn, from what needs no query."""
    page = browser(make_user())

    def refuse(*_args, **_kwargs):
        raise db.engine.dialect.loaded_dbapi.OperationalError("connection refused: the database is away")

    db.engine.dispose()
    event.listen(db.engine, "do_connect", refuse)
    try:
        for path in ("/", "/projects", "/me/claims", "/me/notifications", "/public"):
            response = page.get(path)
            assert response.status_code == 503, (path, response.status_code)
            assert "服务暂时不可用" in response.get_data(as_text=True)
    finally:
        event.remove(db.engine, "do_connect", refuse)
    assert page.get("/me/claims").status_code == 200
