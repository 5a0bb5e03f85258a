"""The yardstick for bench/flash_claim.py: the same claim with no framework — a bare WSGI function and psycopg.

    POST /api/v1/projects/<id>/claims   Authorization: Bearer <token>
    GET  /healthz                       SELECT 1

It keeps the claim's rules, on the app's own tables (the scratch database flash_claim.py seeds): the bearer token's
sha256 names a live, unexpired token of an active user with the volunteer role (401/403 otherwise); the project
must be open (published, past publish_at, not ended: 409 not_open); a full project (both counters at capacity) is
refused from the row as read, without a lock or a write (409 project_full, or already_claimed for a volunteer who
holds a live claim); otherwise a guarded UPDATE takes a confirmed place while one remains, else a waitlist place
with the next waitlist_seq, else 409 project_full; the claim row is inserted (the unique live-claim index refuses a
second one: 409 already_claimed, everything rolled back) and committed; the 201 carries the claim's id, status and
waitlist position. What it leaves out is the app's machinery — sessions, locale, CSRF, rate limits, audit events,
suspension and active-claim checks, metrics — which is what the ratio to it measures.

flash_claim.py serves it with the same server and settings as the product, on another port:
`gunicorn … bench.yardstick:app` or `granian --interface wsgi … bench.yardstick:app`, DATABASE_URL in the
environment (a SQLAlchemy URL; "+psycopg" is dropped). PostgreSQL only. `bench.yardstick:flask_app` is a rung
between the two: the same function as a bare Flask view, to measure what Flask itself costs a claim.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from datetime import UTC, datetime

import psycopg

DSN = os.environ.get("DATABASE_URL", "").replace("postgresql+psycopg://", "postgresql://")
CLAIMS_PATH = re.compile(r"/api/v1/projects/(\d{1,18})/claims")

TOKEN = """SELECT u.id FROM api_tokens t JOIN users u ON u.id = t.user_id
           WHERE t.token_hash = %s AND t.revoked_at IS NULL AND t.expires_at > %s AND u.active
             AND EXISTS (SELECT 1 FROM user_roles r WHERE r.user_id = u.id AND r.role = 'volunteer')"""
PROJECT = """SELECT status = 'published' AND publish_at <= %(now)s AND ends_at > %(now)s,
                    confirmed_count >= capacity AND waitlist_count >= waitlist_capacity
             FROM projects WHERE id = %(project)s"""
HOLDS = """SELECT 1 FROM claims WHERE project_id = %s AND volunteer_id = %s
           AND status IN ('confirmed', 'waitlisted')"""
OPEN_NOW = "id = %(project)s AND status = 'published' AND publish_at <= %(now)s AND ends_at > %(now)s"
TAKE_CONFIRMED = f"""UPDATE projects SET confirmed_count = confirmed_count + 1
                     WHERE {OPEN_NOW} AND confirmed_count < capacity RETURNING id"""
TAKE_WAITLISTED = f"""UPDATE projects SET waitlist_count = waitlist_count + 1, waitlist_seq = waitlist_seq + 1
                      WHERE {OPEN_NOW} AND waitlist_count < waitlist_capacity RETURNING waitlist_seq"""
INSERT = """INSERT INTO claims (project_id, volunteer_id, status, waitlist_seq, created_at, confirmed_at)
            VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id"""
POSITION = """SELECT count(*) FROM claims WHERE project_id = %s AND status = 'waitlisted' AND waitlist_seq <= %s"""

_local = threading.local()


def connection() -> psycopg.Connection:
    """One connection per thread (a sync worker has one thread; granian's blocking threads each get theirs)."""
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = _local.conn = psycopg.connect(DSN, application_name="flash_claim_yardstick")
    return conn


def answer(start_response, status: str, body: dict) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def refuse(start_response, status: str, code: str) -> list[bytes]:
    return answer(start_response, status, {"error": {"code": code, "message": code}})


def claim(conn: psycopg.Connection, project_id: int, volunteer_id: int, now: datetime) -> tuple[str, dict]:
    """(HTTP status, body) — one transaction, committed on a 201 and rolled back on a refusal."""
    params = {"project": project_id, "now": now}
    row = conn.execute(PROJECT, params).fetchone()
    if row is None:
        return "404 Not Found", {"error": {"code": "not_found", "message": "project"}}
    is_open, full = row
    if not is_open:
        return "409 Conflict", {"error": {"code": "not_open", "message": "not_open"}}
    if full:  # refused from the row as read: no lock, no write
        held = conn.execute(HOLDS, (project_id, volunteer_id)).fetchone()
        code = "already_claimed" if held else "project_full"
        return "409 Conflict", {"error": {"code": code, "message": code}}
    if conn.execute(HOLDS, (project_id, volunteer_id)).fetchone():
        return "409 Conflict", {"error": {"code": "already_claimed", "message": "already_claimed"}}
    status, seq = "confirmed", None
    if conn.execute(TAKE_CONFIRMED, params).fetchone() is None:
        taken = conn.execute(TAKE_WAITLISTED, params).fetchone()
        if taken is None:
            return "409 Conflict", {"error": {"code": "project_full", "message": "project_full"}}
        status, seq = "waitlisted", taken[0]
    inserted = conn.execute(INSERT, (project_id, volunteer_id, status, seq, now,
                                     now if status == "confirmed" else None)).fetchone()
    if inserted is None:  # the same volunteer's other request won
        return "409 Conflict", {"error": {"code": "already_claimed", "message": "already_claimed"}}
    position = conn.execute(POSITION, (project_id, seq)).fetchone()[0] if seq is not None else None
    conn.commit()
    return "201 Created", {"id": inserted[0], "project_id": project_id, "status": status,
                           "waitlist_position": position}


def volunteer_for(conn: psycopg.Connection, header: str, now: datetime) -> int | None:
    """The volunteer a bearer header names (a live token of an active user with the volunteer role), if any."""
    if not header.startswith("Bearer "):
        return None
    user = conn.execute(TOKEN, (hashlib.sha256(header[7:].strip().encode()).hexdigest(), now)).fetchone()
    return user[0] if user else None


def app(environ, start_response):
    path, method = environ.get("PATH_INFO", ""), environ["REQUEST_METHOD"]
    conn = connection()
    try:
        if path == "/healthz" and method == "GET":
            conn.execute("SELECT 1")
            return answer(start_response, "200 OK", {"status": "ok"})
        match = CLAIMS_PATH.fullmatch(path)
        if not match or method != "POST":
            return refuse(start_response, "404 Not Found", "not_found")
        now = datetime.now(UTC)
        volunteer = volunteer_for(conn, environ.get("HTTP_AUTHORIZATION", ""), now)
        if volunteer is None:
            return refuse(start_response, "401 Unauthorized", "unauthorized")
        status, body = claim(conn, int(match[1]), volunteer, now)
        return answer(start_response, status, body)
    finally:
        if not conn.closed:
            conn.rollback()  # nothing after a commit; the refusal's reads otherwise


def _flask_app():
    """The same claim and the same SQL as `app`, as a bare Flask view (no extension, no ORM): what Flask's own
    request and response objects, routing and JSON cost per claim (`flash_claim.py --yardstick-app flask_app`)."""
    from flask import Flask, request

    flask = Flask("yardstick")

    @flask.get("/healthz")
    def healthz():
        connection().execute("SELECT 1")
        return {"status": "ok"}

    @flask.post("/api/v1/projects/<int:project_id>/claims")
    def claims(project_id: int):
        conn, now = connection(), datetime.now(UTC)
        volunteer = volunteer_for(conn, request.headers.get("Authorization", ""), now)
        if volunteer is None:
            return {"error": {"code": "unauthorized", "message": "unauthorized"}}, 401
        status, body = claim(conn, project_id, volunteer, now)
        return body, int(status.split()[0])

    @flask.teardown_request
    def rollback(_exc):
        conn = getattr(_local, "conn", None)
        if conn is not None and not conn.closed:
            conn.rollback()

    return flask


flask_app = _flask_app()
