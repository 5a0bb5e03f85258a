"""The app answers: home page, health check, API document, errors in the right shape."""

import time
from unittest import mock

import pytest
from flask import has_request_context
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from tests.conftest import PG_URL


def test_home_page_is_chinese_by_default_and_switches_to_english(client):
    page = client.get("/").get_data(as_text=True)
    assert 'lang="zh-CN"' in page and "公益币" in page
    client.get("/lang/en?next=/")
    page = client.get("/").get_data(as_text=True)
    assert 'lang="en"' in page and "Public-welfare" in page


def test_healthz_reports_ok_when_the_database_answers(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}


def test_healthz_answers_503_json_when_the_database_does_not(client, app):
    from credits.extensions import db

    failing = OperationalError("SELECT 1", {}, Exception("connection refused"))
    with mock.patch.object(db.session, "execute", side_effect=failing):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json["status"] == "unavailable"


def rollback_failing_in_requests(db, failing: Exception):
    """The session's rollback raising `failing` inside a request, as on a connection the database dropped; the
    test client's own rollback of the test body before the request stays real."""
    real_rollback = db.session.rollback

    def rollback():
        if has_request_context():
            raise failing
        real_rollback()

    return mock.patch.object(db.session, "rollback", side_effect=rollback)


def test_healthz_answers_503_when_even_the_rollback_fails(client, app):
    """A dropped connection cannot roll back either: it is discarded, and the answer is still the 503."""
    from credits.extensions import db

    failing = OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))
    with mock.patch.object(db.session, "execute", side_effect=failing), rollback_failing_in_requests(db, failing):
        response = client.get("/healthz")
    assert response.status_code == 503 and response.json["error"]["code"] == "unavailable"
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize("path, body, status, code", [
    ("/api/v1/no-such-thing", None, 404, "not_found"),  # an HTTP error
    ("/api/v1/auth/token", {"phone": "1"}, 422, "validation_error"),  # a schema's
    ("/api/v1/auth/token", {"phone": "13800000000", "password": "wrong-password"}, 401, "unauthorized"),  # a rule's
])
def test_an_error_answer_survives_a_connection_that_cannot_roll_back(client, path, body, status, code):
    from credits.extensions import db

    failing = OperationalError("ROLLBACK", {}, Exception("server closed the connection unexpectedly"))
    with rollback_failing_in_requests(db, failing):
        response = client.post(path, json=body) if body else client.get(path)
    assert response.status_code == status and response.json["error"]["code"] == code


def test_openapi_document_is_openapi_3_and_lists_the_contract_paths(client):
    doc = client.get("/api/v1/openapi.json").json
    assert doc["openapi"].startswith("3.")
    for path in ("/api/v1/auth/register", "/api/v1/auth/token", "/api/v1/me", "/api/v1/organizations"):
        assert path in doc["paths"], path


def test_api_docs_page_loads_the_vendored_reader(client):
    page = client.get("/api/docs").get_data(as_text=True)
    assert "swagger-ui-bundle.js" in page and "openapi.json" in page
    assert client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js").status_code == 200


def test_unknown_api_route_is_json_404_and_unknown_page_is_html_404(client):
    api = client.get("/api/v1/no-such-thing")
    assert api.status_code == 404 and api.json["error"]["code"] == "not_found"
    page = client.get("/no-such-page")
    assert page.status_code == 404 and "text/html" in page.content_type


def test_a_body_past_two_megabytes_is_refused_with_413_and_stores_nothing(client):
    from credits.auth.models import User
    from credits.extensions import db

    users = db.session.query(User).count()
    big = "志" * (1024 * 1024)  # 3 MB in UTF-8
    api = client.post("/api/v1/auth/register", json={"phone": "13912345678", "name": big, "password": "x" * 12})
    page = client.post("/register", data={"phone": "13912345678", "name": big, "password": "x" * 12})

    assert api.status_code == 413 and api.json["error"]["code"] == "too_large"
    assert page.status_code == 413 and "提交的内容太大了" in page.get_data(as_text=True)
    assert db.session.query(User).count() == users


def test_security_headers_are_on_every_response(client):
    for path in ("/", "/api/v1/organizations", "/no-such-page"):
        headers = client.get(path).headers
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert "unsafe-inline" not in headers["Content-Security-Policy"].split("script-src")[1].split(";")[0]
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"


def test_language_switch_refuses_to_redirect_off_site(client):
    response = client.get("/lang/en?next=//evil.example/")
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_validation_messages_speak_chinese_by_default_and_english_on_request(client):
    body = {"phone": "1", "password": "gongyi-test-2026", "bogus": 1}
    fields = client.post("/api/v1/auth/register", json=body).json["error"]["fields"]
    assert fields["bogus"] == ["无法识别的字段。"] and fields["name"] == ["请填写此项。"]
    english = client.post("/api/v1/auth/register", json=body, headers={"Accept-Language": "en"}).json
    assert english["error"]["fields"]["bogus"] == ["Unknown field."]
    assert english["error"]["fields"]["name"] == ["Please fill this in."]


def test_range_and_length_messages_carry_their_bounds(app):
    from credits.errors import localize

    with app.test_request_context("/api/v1/x"):
        assert localize(["Must be greater than or equal to 1 and less than or equal to 100000."]) == [
            "须在 1 到 100000 之间。"]
        assert localize({"title": ["Longer than maximum length 100."]}) == {"title": ["最多 100 个字符。"]}


@pytest.mark.skipif(not PG_URL, reason="terminates a PostgreSQL backend")
def test_a_connection_the_database_drops_after_the_response_is_made_does_not_turn_it_into_a_500(app, client):
    """The fault run caught this: PostgreSQL stopping between a request's last query and its teardown made the
    session's ROLLBACK fail, and the finished response became gunicorn's HTML 500."""
    from credits.extensions import db

    def query_then_lose_the_connection():
        pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with db.engine.connect() as admin:  # another pooled connection plays the administrator
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            admin.commit()
            deadline = time.monotonic() + 10
            # pg_stat_activity is a snapshot kept for the whole transaction (PostgreSQL 15's
            # stats_fetch_consistency): each poll must be a transaction of its own, or this waits forever.
            while admin.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"),
                                {"pid": pid}).scalar_one():
                admin.commit()
                assert time.monotonic() < deadline, "the terminated backend did not go away"
                time.sleep(0.01)
            admin.commit()
        return {"done": True}

    app.add_url_rule("/test/lose-connection", view_func=query_then_lose_the_connection)
    response = client.get("/test/lose-connection")
    assert response.status_code == 200 and response.json == {"done": True}
    assert client.get("/healthz").json == {"status": "ok"}  # the dead connection was thrown away, not pooled
