"""What an operator watches: Prometheus metrics from every process, a request id on each response and log line,
and /livez for a process supervisor (SPEC 4)."""

from __future__ import annotations

import hmac
import ipaddress
import os
import re
import time
import uuid

from flask import Blueprint, Flask, Response, abort, current_app, g, has_request_context, jsonify, request
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import event
from sqlalchemy.orm import Session

# Under gunicorn every worker counts in its own process: PROMETHEUS_MULTIPROC_DIR (set before the app is imported,
# see deploy/gunicorn.conf.py) makes prometheus_client keep the values in files there, and a scrape of any worker
# sums them all.
REQUESTS = Counter("credits_http_requests_total", "Requests answered, by method, route and status.",
                   ["method", "route", "status"])
LATENCY = Histogram("credits_http_request_duration_seconds", "Time to answer a request, by method and route.",
                    ["method", "route"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
CLAIMS = Counter("credits_claims_total",
                 "Claim attempts by outcome: confirmed, waitlisted, or the code of the rule that refused it.",
                 ["outcome"])
COINS = Counter("credits_ledger_coins_total", "Coins moved by committed ledger transactions, by kind.", ["kind"])

_PENDING = "credits_metrics_on_commit"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

bp = Blueprint("observability", __name__)


def count_on_commit(session: Session, counter: Counter, amount: int = 1, **labels: str) -> None:
    """Count once the unit of work commits: a request that is rolled back, or replayed after a conflict, is not
    counted twice, or at all."""
    session.info.setdefault(_PENDING, []).append((counter, labels, amount))


@event.listens_for(Session, "after_commit")
def _count_committed(session: Session) -> None:
    for counter, labels, amount in session.info.pop(_PENDING, ()):
        (counter.labels(**labels) if labels else counter).inc(amount)


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop(_PENDING, None)


def request_id() -> str:
    """This request's id, or "-" outside a request (the CLI, the worker)."""
    return g.get("request_id", "-") if has_request_context() else "-"


def _registry():
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def _may_scrape() -> bool:
    """With METRICS_TOKEN set, a scraper shows it as a bearer token; without, only this host may scrape."""
    token = current_app.config.get("METRICS_TOKEN") or ""
    if token:
        offered = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(offered.encode(), token.encode())
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


@bp.get("/metrics")
def metrics():
    if not _may_scrape():
        abort(404)
    return Response(generate_latest(_registry()), mimetype=CONTENT_TYPE_LATEST)


@bp.get("/livez")
def livez():
    """The process answers: nothing here touches the database (that is /healthz)."""
    return jsonify(status="ok")


def register_observability(app: Flask) -> None:
    """Registered before every other before_request step, so that an early answer (a refused body, a 415) still
    carries its id and is timed."""
    app.register_blueprint(bp)

    @app.before_request
    def start_request():
        offered = request.headers.get("X-Request-ID", "")
        g.request_id = offered if _REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex
        g.request_started = time.perf_counter()

    @app.after_request
    def finish_request(response):
        response.headers["X-Request-ID"] = request_id()
        route = request.url_rule.rule if request.url_rule else "unmatched"
        REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        if (started := g.get("request_started")) is not None:
            LATENCY.labels(request.method, route).observe(time.perf_counter() - started)
        return response
