"""Reports at town scale: the dashboard, each table's first page, a long wallet and full exports of the records.

Runs in-process against a database that `flask credits seed-scale` filled (server-side time is what is measured:
the Flask test client calls the app directly, with no network and no gunicorn). It signs in through the API as the
seed's coordinator and long-history volunteer, and through the sign-in form for the HTML dashboard, then times
each request N times after warm-ups and prints the median and p95. Each export runs in a fresh child process
that signs in, resets the kernel's peak-RSS mark (`/proc/self/clear_refs`, so argon2's 64 MiB at sign-in does not
hide anything), streams the download to a temporary file and reads the peak (`VmHWM`): peak minus the RSS before
the request is what the export cost in memory.

    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/credits_scale .venv/bin/python bench/reports.py
    .venv/bin/python bench/reports.py --db-url sqlite:////tmp/credits_scale.sqlite --runs 20 --json-out out.json

`--explain` prints the plan of every SQL statement slower than `--slow-ms` (EXPLAIN ANALYZE on PostgreSQL,
EXPLAIN QUERY PLAN on SQLite). Reads only; the database is not changed (sign-ins add API tokens and audit events).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import secrets
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COORDINATOR_PHONE = "13700000001"
VOLUNTEER_PHONE = "15000000000"
PASSWORD = "gongyi-scale-2026"
TABLES = ("projects", "organizations", "merchants", "volunteers")
TARGETS_MS = {"dashboard": 1000, "page": 1000, "wallet": 50}
EXPORT_MEMORY_TARGET_MB = 200


def make_app(url: str):
    from credits import create_app
    from credits.config import Config

    return create_app(Config, {"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": secrets.token_hex(16),
                               "RATELIMIT_ENABLED": False})


def api_token(client, phone: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/token", json={"phone": phone, "password": PASSWORD})
    if response.status_code != 201:
        raise SystemExit(f"sign-in as {phone} failed ({response.status_code}): is this a seed-scale database?")
    return {"Authorization": f"Bearer {response.json['token']}"}


def form_login(client, phone: str) -> None:
    html = client.get("/login").get_data(as_text=True)
    marker = 'name="csrf_token" value="'
    start = html.index(marker) + len(marker)
    response = client.post("/login", data={"phone": phone, "password": PASSWORD,
                                           "csrf_token": html[start:html.index('"', start)]})
    if response.status_code != 302:
        raise SystemExit(f"form sign-in as {phone} failed ({response.status_code})")


def period_of(app) -> tuple[str, str]:
    """The seed's year: 1 January to 31 December of the year its projects run in."""
    from sqlalchemy import func, select

    from credits.extensions import db
    from credits.projects.models import Project
    from credits.timeutil import local_zone

    with app.app_context():
        last = db.session.scalar(select(func.max(Project.starts_at)))
        if last is None:
            raise SystemExit("no projects: run `flask credits seed-scale` on this database first")
        year = last.astimezone(local_zone()).year
    return f"{year}-01-01", f"{year}-12-31"


class SlowStatements:
    """Statements slower than a threshold, with their parameters, for EXPLAIN afterwards."""

    def __init__(self, engine, threshold_ms: float) -> None:
        from sqlalchemy import event

        self.threshold, self.found, self.label = threshold_ms, [], ""
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        conn.info.setdefault("bench_started", []).append(time.perf_counter())

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        elapsed = (time.perf_counter() - conn.info["bench_started"].pop()) * 1000
        if elapsed >= self.threshold and not statement.lstrip().upper().startswith("EXPLAIN"):
            self.found.append((elapsed, self.label, statement, parameters))

    def explain(self, app) -> list[dict]:
        from credits.extensions import db

        plans, seen = [], set()
        for elapsed, label, statement, parameters in sorted(self.found, key=lambda f: -f[0]):
            if statement in seen:
                continue
            seen.add(statement)
            with app.app_context():
                conn = db.session.connection()
                prefix = ("EXPLAIN (ANALYZE, BUFFERS) " if conn.dialect.name == "postgresql"
                          else "EXPLAIN QUERY PLAN ")
                rows = conn.exec_driver_sql(prefix + statement, parameters).all()
                db.session.rollback()
            plan = "\n".join(" | ".join(str(c) for c in row) for row in rows)
            plans.append({"label": label, "ms": round(elapsed, 1), "statement": statement, "plan": plan})
        return plans


def timed(client, path: str, headers: dict | None, runs: int, warmup: int) -> dict:
    """Median and p95 (ms) of `runs` GETs after `warmup` unmeasured ones; every answer must be 200."""
    times, size = [], 0
    for i in range(warmup + runs):
        started = time.perf_counter()
        response = client.get(path, headers=headers or {})
        body = response.get_data()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code == 404 and i == 0:
            return {"path": path, "missing": True}
        if response.status_code != 200:
            raise SystemExit(f"GET {path} answered {response.status_code}: {body[:300]!r}")
        if i >= warmup:
            times.append(elapsed)
        size = len(body)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return {"path": path, "runs": runs, "median_ms": round(statistics.median(times), 1), "p95_ms": round(p95, 1),
            "min_ms": round(times[0], 1), "max_ms": round(times[-1], 1), "bytes": size}


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS (Linux >= 4.0), so that what the process did
    before (argon2 hashing 64 MiB at sign-in, imports) does not hide the export's own peak."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def export_child(url: str, path: str) -> None:
    """In a fresh process: sign in, reset the peak-RSS mark, stream the export to a temporary file (so nothing
    of it is kept in memory), read the peak. XLSX rows are counted from the sheet's XML in the zip."""
    import tempfile
    import zipfile

    app = make_app(url)
    client = app.test_client()
    headers = api_token(client, COORDINATOR_PHONE)
    client.get("/api/v1/reports/summary?from=2000-01-01&to=2000-01-02", headers=headers)  # import what a request does
    exact = _reset_peak()
    before = _status_kb("VmRSS") if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    response = client.get(path, headers=headers, buffered=False)
    first_byte, size, lines = None, 0, 0
    with tempfile.TemporaryFile() as spool:
        for chunk in response.response:
            if first_byte is None:
                first_byte = time.perf_counter() - started
            size += len(chunk)
            lines += chunk.count(b"\n")
            spool.write(chunk)
        elapsed = time.perf_counter() - started
        response.close()
        after = _status_kb("VmHWM") if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rows = lines - 1  # CSV: the header line, then one line per record (the seed's notes have no newlines)
        if path.endswith("xlsx"):
            spool.seek(0)
            with zipfile.ZipFile(spool) as archive, archive.open("xl/worksheets/sheet1.xml") as sheet:
                rows = -1  # the header row
                tail = b""
                while block := sheet.read(1 << 20):
                    rows += (tail + block).count(b"<row")
                    tail = block[-3:]
    print(json.dumps({"status": response.status_code, "seconds": round(elapsed, 2),
                      "first_byte_s": round(first_byte or elapsed, 2), "bytes": size, "rows": rows,
                      "method": "VmHWM after reset" if exact else "ru_maxrss", "rss_before_mb": round(before / 1024, 1),
                      "rss_peak_mb": round(after / 1024, 1), "added_mb": round((after - before) / 1024, 1)}))


def run_export(url: str, path: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--db-url", url, "--export-child", path], capture_output=True,
                         text=True, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"export {path} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def counts(app) -> dict[str, int]:
    from sqlalchemy import text

    from credits.extensions import db

    with app.app_context():
        return {t: db.session.scalar(text(f"SELECT count(*) FROM {t}")) for t in (
            "users", "projects", "claims", "service_records", "ledger_transactions", "ledger_entries", "vouchers")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--export-runs", type=int, default=3, help="fresh processes per export format")
    parser.add_argument("--formats", default="csv,xlsx")
    parser.add_argument("--skip-exports", action="store_true")
    parser.add_argument("--skip-requests", action="store_true", help="only the exports")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN the statements slower than --slow-ms")
    parser.add_argument("--slow-ms", type=float, default=100.0)
    parser.add_argument("--json-out")
    parser.add_argument("--export-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.db_url:
        parser.error("give --db-url or set DATABASE_URL")
    if args.export_child:
        export_child(args.db_url, args.export_child)
        return

    app = make_app(args.db_url)
    first, last = period_of(app)
    query = f"from={first}&to={last}"
    with app.app_context():
        from credits.extensions import db

        engine = db.engine
        slow = SlowStatements(engine, args.slow_ms)
        dialect = engine.dialect.name
    print(f"database: {dialect} {engine.url.render_as_string(hide_password=True)}; period {first} .. {last}")
    print(f"rows: {counts(app)}")
    print(f"{args.runs} timed runs after {args.warmup} warm-ups each; in-process (Flask test client)\n")

    coordinator = app.test_client()
    bearer = api_token(coordinator, COORDINATOR_PHONE)
    volunteer = api_token(app.test_client(), VOLUNTEER_PHONE)
    browser = app.test_client()
    form_login(browser, COORDINATOR_PHONE)

    cases = [("dashboard", "summary (API)", coordinator, f"/api/v1/reports/summary?{query}", bearer),
             ("dashboard", "dashboard page (HTML)", browser, f"/reports/?{query}", None)]
    cases += [("page", f"{table} page 1", coordinator,
               f"/api/v1/reports/{table}?{query}&page=1&per_page=20", bearer) for table in TABLES]
    cases += [("page", "records page 1", coordinator, f"/api/v1/reports/records?{query}&page=1&per_page=20",
               bearer)]
    cases += [("wallet", "wallet (long history)", app.test_client(), "/api/v1/me/wallet", volunteer)]
    results = []
    print(f"{'request':32} {'median':>9} {'p95':>9} {'max':>9} {'target':>8}  bytes")
    for kind, label, client, path, headers in [] if args.skip_requests else cases:
        slow.label = label
        result = timed(client, path, headers, args.runs, args.warmup)
        if result.get("missing"):
            print(f"{label:32} 404 (not built yet?)")
            results.append({**result, "kind": kind, "label": label})
            continue
        result.update(kind=kind, label=label, target_ms=TARGETS_MS[kind],
                      met=result["p95_ms"] < TARGETS_MS[kind])
        results.append(result)
        print(f"{label:32} {result['median_ms']:7.1f}ms {result['p95_ms']:7.1f}ms {result['max_ms']:7.1f}ms "
              f"{'<' + str(TARGETS_MS[kind]):>6}ms  {result['bytes']}  {'ok' if result['met'] else 'MISSED'}")

    exports = []
    if not args.skip_exports:
        print(f"\nexports of every service record in the period, {args.export_runs} fresh processes each "
              "(memory: the process's peak RSS during the download minus its RSS before it)")
        for fmt in args.formats.split(","):
            path = f"/api/v1/reports/records?{query}&format={fmt}"
            runs = [run_export(args.db_url, path) for _ in range(args.export_runs)]
            seconds = sorted(r["seconds"] for r in runs)
            rows = runs[0]["rows"]
            added = max(r["added_mb"] for r in runs)
            summary = {"format": fmt, "runs": runs, "median_s": statistics.median(seconds), "max_s": seconds[-1],
                       "rows": rows, "bytes": runs[0]["bytes"], "added_mb": added,
                       "peak_rss_mb": max(r["rss_peak_mb"] for r in runs),
                       "met": added < EXPORT_MEMORY_TARGET_MB and all(r["status"] == 200 for r in runs)}
            exports.append(summary)
            print(f"{fmt:5} {rows} rows, {summary['bytes'] / 1e6:.1f} MB: median {summary['median_s']:.1f} s "
                  f"(runs {', '.join(f'{s:.1f}' for s in seconds)}), first byte "
                  f"{statistics.median(r['first_byte_s'] for r in runs):.1f} s; memory added {added:.0f} MB "
                  f"(peak RSS {summary['peak_rss_mb']:.0f} MB) {'ok' if summary['met'] else 'MISSED'}")

    plans = slow.explain(app) if args.explain else []
    for plan in plans:
        print(f"\n--- {plan['label']}: {plan['ms']} ms\n{plan['statement']}\n{plan['plan']}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({
            "date": date.today().isoformat(), "machine": platform.platform(), "cpus": os.cpu_count(),
            "database": dialect, "period": [first, last], "rows": counts(app), "requests": results,
            "exports": exports, "slow_statements": plans}, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
