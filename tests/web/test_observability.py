"""What operators watch: /livez without the database, a request id on every answer and log line, and Prometheus
metrics that move with what happens — from one process and summed over the server's workers."""

from __future__ import annotations

import logging
import os
import re
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event

from bench import harness
from credits.extensions import db
from credits.ledger import services as ledger
from credits.ledger.models import SystemAccount, TxKind
from credits.projects import services as projects
from credits.timeutil import utcnow
from tests.projects.test_claim_rules import project_data

ROOT = Path(__file__).resolve().parents[2]


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus exposition, 0 when it has not been counted yet."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


def scrape(client) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    return response.get_data(as_text=True)


def test_livez_answers_without_a_single_query(app, client):
    statements = []

    def seen(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        response = client.get("/livez")
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    assert response.status_code == 200 and response.json == {"status": "ok"}
    assert statements == []


def test_every_answer_carries_a_request_id_kept_from_the_caller_when_it_is_sane(client):
    made = client.get("/livez").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert client.get("/livez").headers["X-Request-ID"] != made
    assert client.get("/livez", headers={"X-Request-ID": "nginx-7f3a.1"}).headers["X-Request-ID"] == "nginx-7f3a.1"
    for forged in ("a b; Set-Cookie=x", "x" * 65, "<script>"):
        kept = client.get("/livez", headers={"X-Request-ID": forged}).headers["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f]{32}", kept), forged
    # An answer refused before any view (a body that is not JSON) carries one too.
    refused = client.post("/api/v1/auth/token", data="x", content_type="text/plain")
    assert refused.status_code == 415 and refused.headers["X-Request-ID"]


def test_log_lines_of_a_request_carry_its_id(app, client, caplog):
    @app.get("/test/log-something")
    def log_something():
        logging.getLogger("credits.test").warning("something happened")
        return "ok"

    with caplog.at_level(logging.WARNING, logger="credits.test"):
        client.get("/test/log-something", headers={"X-Request-ID": "req-42"})
    assert [r.request_id for r in caplog.records if r.name == "credits.test"] == ["req-42"]
    logging.getLogger("credits.test").warning("outside a request")
    assert caplog.records[-1].request_id == "-"


def test_a_claim_moves_the_claims_counter_by_its_outcome(client, coordinator, make_user, token_for):
    project = projects.create_project(project_data(capacity=1, waitlist_capacity=0), actor=coordinator)
    projects.publish(project, actor=coordinator, publish_at=utcnow() - timedelta(minutes=1))
    db.session.commit()
    before = scrape(client)
    first, second = token_for(make_user()), token_for(make_user())
    assert client.post(f"/api/v1/projects/{project.id}/claims", headers=first).status_code == 201
    assert client.post(f"/api/v1/projects/{project.id}/claims", headers=second).status_code == 409
    after = scrape(client)

    def moved(name, **labels):
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert moved("credits_claims_total", outcome="confirmed") == 1
    assert moved("credits_claims_total", outcome="project_full") == 1
    assert moved("credits_http_requests_total", method="POST", route="/api/v1/projects/<int:project_id>/claims",
                 status="201") == 1
    assert moved("credits_http_request_duration_seconds_count", method="POST",
                 route="/api/v1/projects/<int:project_id>/claims") == 2


def test_coins_are_counted_when_their_transaction_commits_and_not_when_it_rolls_back(client, make_user):
    volunteer = make_user()
    ledger.user_account(volunteer.id)
    ledger.system_account(SystemAccount.ISSUANCE)
    db.session.commit()

    def issue():
        ledger.transfer(TxKind.ISSUE, ledger.system_account(SystemAccount.ISSUANCE),
                        ledger.user_account(volunteer.id), 7)

    before = sample(scrape(client), "credits_ledger_coins_total", kind="issue")
    issue()
    db.session.rollback()
    assert sample(scrape(client), "credits_ledger_coins_total", kind="issue") == before
    issue()
    db.session.commit()
    assert sample(scrape(client), "credits_ledger_coins_total", kind="issue") == before + 7


def test_metrics_answer_this_host_or_the_configured_token_only(app, client):
    outsider = {"REMOTE_ADDR": "203.0.113.9"}
    assert client.get("/metrics", environ_base=outsider).status_code == 404
    app.config["METRICS_TOKEN"] = "scrape-secret"
    assert client.get("/metrics").status_code == 404  # with a token set, even this host must show it
    assert client.get("/metrics", environ_base=outsider,
                      headers={"Authorization": "Bearer wrong"}).status_code == 404
    assert client.get("/metrics", environ_base=outsider,
                      headers={"Authorization": "Bearer scrape-secret"}).status_code == 200


@pytest.mark.parametrize("server", harness.SERVERS)
def test_under_the_deployed_server_a_scrape_sums_every_workers_counts(server, database_url, tmp_path):
    """The deploy runs several workers (deploy/gunicorn.conf.py, deploy/granian.env), each counting in its own
    process: one scrape, answered by whichever worker, must report all of them. The server is started as the
    benches start it, with the deploy's settings and two workers (bench/harness.py)."""
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "test", "CREDITS_ENV": "production",
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"), "PYTHONUNBUFFERED": "1"}
    env.pop("REDIS_URL", None)
    (tmp_path / "metrics").mkdir()
    instance = harness.make_instance(server, "metrics", harness.free_port(), 2, env, tmp_path)

    def get(path: str) -> bytes:
        with urllib.request.urlopen(instance.url + path, timeout=10) as answer:
            return answer.read()

    try:
        instance.start()
        metrics_dir = Path(instance.env["PROMETHEUS_MULTIPROC_DIR"])  # granian's: fresh at each start
        sent = 0
        with ThreadPoolExecutor(8) as pool:  # concurrent connections, until both workers have taken some
            while sent < 60 or (len(list(metrics_dir.glob("counter_*.db"))) < 2 and sent < 3000):
                list(pool.map(lambda _: get("/livez"), range(60)))
                sent += 60
        exposition = get("/metrics").decode()
    finally:
        instance.stop()
    # Every /livez sent, no more (the start waited on /healthz).
    assert sample(exposition, "credits_http_requests_total", method="GET", route="/livez", status="200") == sent
    assert len(list(metrics_dir.glob("counter_*.db"))) >= 2  # more than one worker counted
