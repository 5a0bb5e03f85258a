"""The participation report (两新组织参与社区活动, SPEC 2.8) at district scale: p95 of repeated requests.

Runs in-process against a database that `flask credits seed-scale` filled (organisations of 20 to 2,000 members,
party members among them), through the Flask test client (server-side time only), as bench/reports.py does and
with its helpers. It signs in as the seed's town coordinator (奉城镇党委: every organisation) and as an
enterprise's coordinator (their own organisation), and times, over the seed's year and its last quarter: the API's
first page, a 100-row page, the HTML page, and the full CSV and XLSX downloads. Prints median and p95 (ms) per
request and whether p95 is under the target (1 s); `--explain` prints the plans of statements slower than
`--slow-ms`.

    .venv/bin/python bench/participation_report.py --db-url postgresql+psycopg://postgres@127.0.0.1:5432/credits_scale
    .venv/bin/python bench/participation_report.py --db-url sqlite:////tmp/credits_scale.sqlite --runs 20
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reports import (  # noqa: E402  (bench/ is not a package: its sibling is imported by path)
    COORDINATOR_PHONE,
    SlowStatements,
    api_token,
    form_login,
    make_app,
    period_of,
    timed,
)

ENTERPRISE_COORDINATOR_PHONE = "13700000007"  # seed-scale's coordinator of 伽蓝集团党委 (an enterprise)
TARGET_MS = 1000
URL = "/api/v1/reports/participation"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--slow-ms", type=float, default=200.0)
    parser.add_argument("--json-out")
    args = parser.parse_args()
    if not args.db_url:
        raise SystemExit("give --db-url or DATABASE_URL (a database seed-scale filled)")

    app = make_app(args.db_url)
    with app.app_context():
        from sqlalchemy import func, select

        from credits.auth.models import Organization, User
        from credits.extensions import db

        slow = SlowStatements(db.engine, args.slow_ms) if args.explain else None
        organizations = db.session.scalar(select(func.count()).select_from(Organization))
        sizes = db.session.execute(select(func.count()).select_from(User).where(User.organization_id.isnot(None))
                                   .group_by(User.organization_id)).scalars().all()
        party = db.session.scalar(select(func.count()).select_from(User).where(User.party_member.is_(True)))
        db.session.rollback()
    first, last = period_of(app)
    quarter_start = (date.fromisoformat(last) - timedelta(days=91)).isoformat()
    client = app.test_client()
    town, firm = api_token(client, COORDINATOR_PHONE), api_token(client, ENTERPRISE_COORDINATOR_PHONE)
    page_client = app.test_client()
    form_login(page_client, COORDINATOR_PHONE)

    year = f"from={first}&to={last}"
    quarter = f"from={quarter_start}&to={last}"
    cases = [
        ("town: year, page 1", client, f"{URL}?{year}", town),
        ("town: year, 100 rows", client, f"{URL}?{year}&per_page=100", town),
        ("town: quarter, page 1", client, f"{URL}?{quarter}", town),
        ("town: year, CSV (every organisation)", client, f"{URL}?{year}&format=csv", town),
        ("town: year, XLSX (every organisation)", client, f"{URL}?{year}&format=xlsx", town),
        ("enterprise: year, own organisation", client, f"{URL}?{year}", firm),
        ("town: HTML page, year", page_client, f"/reports/participation?{year}", None),
    ]
    results = []
    for label, who, path, headers in cases:
        if slow:
            slow.label = label
        figures = timed(who, path, headers, args.runs, args.warmup)
        figures["label"] = label
        figures["met"] = figures["p95_ms"] < TARGET_MS
        results.append(figures)

    print(f"database: {app.config['SQLALCHEMY_DATABASE_URI'].split('@')[-1]} ({platform.python_version()})")
    print(f"organisations: {organizations}; members per organisation: min {min(sizes)}, median "
          f"{sorted(sizes)[len(sizes) // 2]}, max {max(sizes)}; members in all {sum(sizes):,}; "
          f"party members {party:,}")
    print(f"period: {first} to {last} (quarter from {quarter_start}); {args.runs} runs after {args.warmup} warm-ups")
    print(f"{'request':42} {'median ms':>10} {'p95 ms':>8}  target p95 < {TARGET_MS} ms")
    for r in results:
        print(f"{r['label']:42} {r['median_ms']:>10} {r['p95_ms']:>8}  {'met' if r['met'] else 'MISSED'}")
    plans = slow.explain(app) if slow else []
    for plan in plans:
        print(f"\n-- {plan['label']}: {plan['ms']} ms\n{plan['statement']}\n{plan['plan']}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"results": results, "plans": plans}, ensure_ascii=False,
                                                  indent=1))


if __name__ == "__main__":
    main()
