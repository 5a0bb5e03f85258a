"""`flask credits remind` over 10,000 due claims: how long the first run takes (10,000 inbox rows and SMS deliveries,
handed to the job queue after each batch commits, as in production), and that a second run sends 0, and how long
it takes to find that out.

Seeds a scratch database in bulk (100 published projects starting in 20 hours, 100 confirmed claims each, one
volunteer per claim), starts a redis-server of its own on a free port for the queue (no worker: the jobs are only
counted), then runs remind twice in this process, as cron would.

    .venv/bin/python bench/remind.py                  # PostgreSQL database credits_bench
    .venv/bin/python bench/remind.py --db sqlite      # a temporary SQLite file
    .venv/bin/python bench/remind.py --db postgresql+psycopg://postgres@127.0.0.1:5432/other

Only for 127.0.0.1: the script drops and recreates the schema of the database it is given.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from harness import ROOT, Redis, seed

sys.path.insert(0, str(ROOT))

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/credits_bench"


def seed_claims(app, projects: int, per_project: int) -> None:
    """harness.seed's projects (starting in 20 hours) and volunteers, then one confirmed claim per volunteer, in
    bulk: what `remind` finds due."""
    from sqlalchemy import insert, update

    from credits.extensions import db
    from credits.projects.models import Claim, Project
    from credits.timeutil import utcnow

    now = utcnow()
    seeded = seed(app, volunteers=projects * per_project, projects=[
        {"title": f"健康加油站{p}", "category": "健康", "location": "奉城镇社区卫生服务中心",
         "starts_at": now + timedelta(hours=20), "ends_at": now + timedelta(hours=23),
         "capacity": per_project, "waitlist_capacity": 0} for p in range(projects)])
    with app.app_context():
        db.session.execute(insert(Claim), [
            {"project_id": seeded["project_ids"][i // per_project], "volunteer_id": uid, "status": "confirmed",
             "created_at": now, "confirmed_at": now} for i, uid in enumerate(seeded["volunteer_ids"])])
        db.session.execute(update(Project).values(confirmed_count=per_project))
        db.session.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default=PG_URL, help="sqlite, or a PostgreSQL URL (default: credits_bench)")
    parser.add_argument("--projects", type=int, default=100)
    parser.add_argument("--per-project", type=int, default=100)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="remind-bench-")
    url = f"sqlite:///{workdir}/bench.sqlite" if args.db == "sqlite" else args.db
    redis = Redis(Path(workdir))
    try:
        from rq import Queue
        from sqlalchemy import func, select

        from credits import create_app
        from credits.config import Config
        from credits.extensions import db
        from credits.notifications.models import Delivery, Notification
        from credits.notifications.reminders import remind
        from credits.notifications.worker import QUEUE_NAME

        app = create_app(Config, {"SQLALCHEMY_DATABASE_URI": url, "REDIS_URL": redis.url,
                                  "RATELIMIT_STORAGE_URI": redis.url, "SMS_BACKEND": "console",
                                  "SECRET_KEY": "bench-secret"})
        started = time.perf_counter()
        seed_claims(app, args.projects, args.per_project)
        seconds = time.perf_counter() - started
        with app.app_context():
            print(f"seeded {args.projects * args.per_project:,} confirmed claims in {seconds:.1f} s "
                  f"({db.engine.dialect.name})")
            runs = []
            for _ in range(2):
                started = time.perf_counter()
                counts = remind()
                runs.append((time.perf_counter() - started, counts))
            for n, (seconds, counts) in enumerate(runs, 1):
                print(f"run {n}: {seconds:.2f} s  {counts}")
            notes = db.session.scalar(select(func.count()).select_from(Notification))
            deliveries = db.session.scalar(select(func.count()).select_from(Delivery))
            queued = Queue(QUEUE_NAME, connection=app.extensions["credits.sms_queue"].connection).count
            print(f"inbox rows {notes:,}, deliveries {deliveries:,}, jobs on the queue {queued:,}")
            expected = args.projects * args.per_project
            assert runs[0][1]["reminders_24h"] == expected, runs[0]
            assert sum(runs[1][1].values()) == 0, runs[1]
            assert notes == deliveries == queued == expected
            db.session.remove()
            db.engine.dispose()
    finally:
        redis.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
