"""Requests refused before a view reads them (credits/gate.py): JSON that would take the parser down, bodies that
are not JSON sent to the API, NUL bytes; and log lines a client's newline cannot forge."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from credits.auth.models import User
from credits.extensions import db
from credits.gate import MAX_JSON_DEPTH, json_problem
from credits.projects.models import Project, ProjectStatus
from credits.timeutil import utcnow
from tests.conftest import csrf_token


def _users() -> int:
    return db.session.query(User).count()


@pytest.mark.parametrize("body", [b"[" * 990 + b"]" * 990, b'{"a":' * 990 + b"1" + b"}" * 990,
                                  b"[" * 100_000])
def test_deeply_nested_json_is_a_422_for_anyone_and_logs_no_traceback(client, volunteer, token_for, caplog, body):
    headers = {"Content-Type": "application/json"}
    with caplog.at_level(logging.ERROR):
        anonymous = client.post("/api/v1/auth/register", data=body, headers=headers)
        signed_in = client.post("/api/v1/projects/1/claim", data=body, headers={**headers, **token_for(volunteer)})
    for response in (anonymous, signed_in):
        assert response.status_code == 422, response.get_data(as_text=True)[:200]
        assert response.json["error"]["code"] == "validation_error"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_an_integer_literal_of_thousands_of_digits_is_a_422_and_registers_nobody(client):
    before = _users()
    body = b'{"phone": "13912345678", "name": "x", "password": "Fengcheng-2026", "organization_id": ' + \
        b"9" * 5000 + b"}"
    response = client.post("/api/v1/auth/register", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422 and response.json["error"]["code"] == "validation_error"
    assert _users() == before


def test_brackets_and_digits_inside_strings_are_text_not_structure():
    assert json_problem(('{"note": "' + "[" * 500 + "9" * 5000 + '", "n": [[1]]}').encode()) is None
    assert json_problem(b'{"note": "a \\" quoted [[[[", "ids": [1, 2, 3]}') is None
    nested_ok = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    assert json_problem(nested_ok) is None
    assert json_problem(b"[" + nested_ok + b"]") is not None


def test_json_to_a_page_is_guarded_too(client):
    response = client.post("/login", data=b"[" * 2000, headers={"Content-Type": "application/json"})
    assert response.status_code == 422


def test_a_json_body_sent_as_text_plain_is_refused_with_415_and_publishes_nothing(client, coordinator, token_for):
    auth = token_for(coordinator)
    created = client.post("/api/v1/projects", headers=auth, json={
        "title": "敬老院陪伴", "description": "陪老人聊天", "location": "敬老院", "capacity": 5, "category": "敬老",
        "starts_at": (utcnow() + timedelta(days=3)).isoformat(),
        "ends_at": (utcnow() + timedelta(days=3, hours=2)).isoformat()})
    assert created.status_code == 201, created.json
    later = (utcnow() + timedelta(days=1)).isoformat()
    response = client.post(f"/api/v1/projects/{created.json['id']}/publish", headers={
        **auth, "Content-Type": "text/plain"}, data=f'{{"publish_at": "{later}"}}')
    assert response.status_code == 415
    assert response.json["error"]["code"] == "validation_error"
    assert db.session.get(Project, created.json["id"]).status == ProjectStatus.DRAFT


def test_a_form_body_to_the_api_is_415_but_an_empty_write_is_fine(client, volunteer, token_for):
    auth = token_for(volunteer)
    form = client.post("/api/v1/auth/token", data={"phone": volunteer.phone, "password": "gongyi-test-2026"})
    assert form.status_code == 415
    assert client.delete("/api/v1/auth/token", headers=auth).status_code == 204


def test_nul_in_a_path_is_404_and_in_a_query_or_form_is_422(client):
    assert client.get("/certificates/%00").status_code == 404
    assert client.get("/me/certificates/%00abc").status_code == 404
    query = client.get("/api/v1/projects?q=%00")
    assert query.status_code == 422 and query.json["error"]["code"] == "validation_error"
    assert client.get("/projects?q=a%00b").status_code == 422
    before = _users()
    page = client.post("/register", data={"phone": "13912345678", "name": "张\x00三", "password": "Fengcheng-2026",
                                          "csrf_token": csrf_token(client, "/register")})
    assert page.status_code == 422
    assert _users() == before


def test_a_newline_in_a_path_cannot_forge_a_log_line(app, client, caplog):
    def boom(rest):
        raise RuntimeError("for the test")

    app.add_url_rule("/boom/<rest>", view_func=boom)
    with caplog.at_level(logging.ERROR):
        response = client.get("/boom/x%0A2026-12-05 INFO credits: forged")
    assert response.status_code == 500
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "\n" not in record.getMessage()
    assert "x\\x0a2026-12-05" in record.getMessage()
