"""The 公示 page and GET /api/v1/public/summary at town scale (issue 18.3: p95 under 200 ms).

Runs in-process against a database that `flask credits seed-scale` filled (server-side time only: the Flask test
client calls the app directly). Times each request N times after warm-ups and prints the median and p95, twice:
`cold`, with the per-process cache emptied before every request (what the first request of each minute costs a
worker), and `cached` (every other request within the minute).

    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/credits_scale .venv/bin/python bench/public_summary.py
    .venv/bin/python bench/public_summary.py --db-url sqlite:////tmp/credits_scale.sqlite --runs 30

Reads only; the database is not changed.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_MS = 200


def make_app(url: str):
    from credits import create_app
    from credits.config import Config

    return create_app(Config, {"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": secrets.token_hex(16),
                               "RATELIMIT_ENABLED": False})


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def timed(client, path: str, runs: int, warmups: int, before=None) -> list[float]:
    times = []
    for i in range(warmups + runs):
        if before:
            before()
        start = time.perf_counter()
        response = client.get(path)
        elapsed = (time.perf_counter() - start) * 1000
        if response.status_code != 200:
            raise SystemExit(f"{path}: {response.status_code}")
        if i >= warmups:
            times.append(elapsed)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmups", type=int, default=2)
    args = parser.parse_args()
    if not args.db_url:
        raise SystemExit("--db-url or DATABASE_URL: a database filled by flask credits seed-scale")
    app = make_app(args.db_url)
    from credits.share import services

    client = app.test_client()
    print(f"{platform.node()} · {app.config['SQLALCHEMY_DATABASE_URI'].split('://')[0]} · {args.runs} runs")
    with app.app_context():
        summary = services.public_summary()
    print(f"all time: {summary['all_time']['volunteers']['served']} volunteers served, "
          f"{summary['all_time']['hours']['approved_minutes'] // 60} h, {summary['all_time']['coins']['issued']} "
          f"coins issued, {summary['coins_outstanding']} outstanding")
    failed = False
    print(f"{'request':<34}{'median ms':>10}{'p95 ms':>10}")
    for label, path, before in (("GET /api/v1/public/summary cold", "/api/v1/public/summary", services.cached.clear),
                                ("GET /public cold", "/public", services.cached.clear),
                                ("GET /api/v1/public/summary cached", "/api/v1/public/summary", None),
                                ("GET /public cached", "/public", None)):
        times = timed(client, path, args.runs, args.warmups, before)
        late = p95(times)
        failed |= late >= TARGET_MS and "cached" in label
        print(f"{label:<34}{statistics.median(times):>10.1f}{late:>10.1f}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
