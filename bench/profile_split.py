"""Where a profiled request's CPU goes: reads py-spy's collapsed stacks (`flash_claim.py --profile OUT` writes
OUT.txt) and prints two splits of the samples, as Markdown tables for docs/benchmarks.md.

    .venv/bin/python bench/profile_split.py OUT.txt [--requests N]

- by step: what the request was doing (server, request setup, each before/after hook, the view's parts, the error
  answer, teardown) — the deepest of the step markers below found in the stack;
- by layer: whose code was running (psycopg, SQLAlchemy, Flask-Limiter with redis-py, marshmallow, Flask, …) —
  the innermost frame that belongs to a known package.

With --requests (the claims phase's request count) each row also shows CPU ms per request, taking the samples'
rate from the file's total and the given phase's app CPU seconds (--app-cpu).
"""

from __future__ import annotations

import argparse
from collections import Counter

# (substring of a frame, step). The deepest frame that matches any marker names the step.
STEPS = [
    ("SyncWorker.", "server (gunicorn: accept, parse, write, close)"),
    ("gunicorn/", "server (gunicorn: accept, parse, write, close)"),
    ("granian", "server (granian)"),
    ("Flask.wsgi_app", "Flask dispatch (other)"),
    ("Flask.__call__", "Flask dispatch (other)"),
    ("RequestContext.push", "request setup (context, routing, session open)"),
    ("RequestContext.pop", "teardown (session end, rollback, context pop)"),
    ("Flask.process_response", "after_request hooks (other)"),
    ("save_session", "session cookie save"),
    ("start_request", "observability (request id, metrics)"),
    ("finish_request", "observability (request id, metrics)"),
    ("refuse_unreadable_requests", "gate (body checks)"),
    ("end_idle_sessions", "session hooks"),
    ("no_store_for_signed_in", "session hooks"),
    ("security_headers", "security headers"),
    ("authenticate_api", "auth: bearer token + user + roles"),
    ("sign_in_bearer", "auth: bearer token + user + roles"),
    ("token_from_header", "auth: bearer token + user + roles"),
    ("require_role", "auth: bearer token + user + roles"),
    ("flask_limiter/", "rate limit (Flask-Limiter, Redis)"),
    ("count_claim", "rate limit (limits, Redis)"),
    ("retrying", "view (other)"),
    ("create_claim", "view (other)"),
    ("claim_by_id", "claim: full-project check (one read)"),
    ("refuse_if_full_for_token", "claim: full-project refusal from the token (one read)"),
    ("get_claimable", "claim: read the project"),
    ("_holds_claim", "claim: holds a claim already?"),
    ("lock (credits/database.py", "claim: lock the volunteer"),
    ("_check_standing", "claim: held claim, suspension, active claims, policy (one read)"),
    ("suspended_until", "claim: held claim, suspension, active claims, policy (one read)"),
    ("active_claims", "claim: held claim, suspension, active claims, policy (one read)"),
    ("get_policy", "claim: held claim, suspension, active claims, policy (one read)"),
    ("_take_place", "claim: guarded UPDATEs"),
    ("_save (credits/projects", "claim: INSERT claim"),
    ("Session.flush", "ORM flush (other writes)"),
    ("record_event", "claim: audit event"),
    ("Session.commit", "commit"),
    ("ResponseMixin", "response: serialise (smorest, marshmallow)"),
    ("_prepare_response_content", "response: serialise (smorest, marshmallow)"),
    ("claim_body", "response: serialise"),
    ("handle_user_exception", "error answer (409 JSON, Babel)"),
    ("handle_http_exception", "error answer (409 JSON, Babel)"),
    ("end_session", "teardown (session end, rollback, context pop)"),
    ("do_teardown", "teardown (session end, rollback, context pop)"),
    ("_checkout", "DB pool checkout + pre-ping"),
]

# (substring of a frame's file, layer), checked from the innermost frame outwards.
LAYERS = [
    ("psycopg", "psycopg (PostgreSQL driver)"),
    ("sqlalchemy/", "SQLAlchemy"),
    ("redis/", "redis-py"),
    ("limits/", "Flask-Limiter / limits"),
    ("flask_limiter/", "Flask-Limiter / limits"),
    ("marshmallow/", "marshmallow / smorest / webargs"),
    ("flask_smorest/", "marshmallow / smorest / webargs"),
    ("webargs/", "marshmallow / smorest / webargs"),
    ("flask_babel/", "Babel"),
    ("babel/", "Babel"),
    ("flask_login/", "Flask-Login"),
    ("flask_wtf/", "Flask-WTF / itsdangerous / sessions"),
    ("itsdangerous/", "Flask-WTF / itsdangerous / sessions"),
    ("sessions.py", "Flask-WTF / itsdangerous / sessions"),
    ("prometheus_client/", "prometheus_client"),
    ("json/", "json"),
    ("werkzeug/", "Werkzeug"),
    ("flask/", "Flask"),
    ("gunicorn/", "gunicorn"),
    ("granian", "granian"),
    ("credits/", "the app's own code"),
    ("bench/", "the app's own code"),
    ("logging/", "logging"),
    ("uuid", "uuid"),
]


def frames_of(stack: str) -> list[str]:
    return [f for f in stack.split(";") if not f.startswith("process ")]


def step_of(frames: list[str]) -> str:
    found = "outside a request"
    for frame in frames:
        for marker, step in STEPS:
            if marker in frame:
                found = step
                break
    return found


def layer_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        where = frame[frame.rfind("(") + 1:]
        for marker, layer in LAYERS:
            if marker in where:
                return layer
    return "other (stdlib, C)"


def split(path: str) -> tuple[Counter, Counter, int]:
    steps, layers, total = Counter(), Counter(), 0
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            n, frames = int(count), frames_of(stack)
            steps[step_of(frames)] += n
            layers[layer_of(frames)] += n
            total += n
    return steps, layers, total


def table(title: str, counts: Counter, total: int, ms_per_sample: float | None) -> str:
    head = f"| {title} | share |" + (" CPU ms per request |" if ms_per_sample else "")
    rule = "|---|---|" + ("---|" if ms_per_sample else "")
    rows = [head, rule]
    for name, n in counts.most_common():
        row = f"| {name} | {100 * n / total:.1f} % |"
        if ms_per_sample:
            row += f" {n * ms_per_sample:.2f} |"
        rows.append(row)
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("stacks", help="py-spy collapsed stacks (flash_claim.py --profile OUT writes OUT.txt)")
    p.add_argument("--requests", type=int, help="requests in the profiled phase")
    p.add_argument("--app-cpu", type=float, help="the app's CPU seconds in that phase (flash_claim prints it)")
    args = p.parse_args()
    steps, layers, total = split(args.stacks)
    ms = args.app_cpu * 1000 / total / args.requests if args.requests and args.app_cpu else None
    print(f"{total} samples\n")
    print(table("step", steps, total, ms))
    print()
    print(table("layer (innermost known frame)", layers, total, ms))


if __name__ == "__main__":
    main()
