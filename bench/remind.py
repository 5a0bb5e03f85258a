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
import socket
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/credits_bench"


def start_redis(workdir: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", workdir], stdout=subprocess.DEVNULL)
    import redis

    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(100):
        try:
            redis.Redis.from_url(url).ping()
            return server, url
        except redis.exceptions.ConnectionError:
            time.sleep(0.05)
    raise SystemExit("redis-server did not start")


def seed(projects: int, per_project: int) -> None:
    from flask_migrate import upgrade
    from sqlalchemy import insert, update

    from credits.auth import services as auth
    from credits.auth.models import Organization, Role, User, UserRole
    from credits.auth.passwords import hash_password
    from credits.extensions import db
    from credits.projects import services as project_services
    from credits.projects.models import Claim, Project
    from credits.timeutil import utcnow

    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    upgrade()
    now = utcnow()
    org = Organization(name="奉城镇压测志愿服务队", kind="social")
    db.session.add(org)
    db.session.flush()
    coordinator = auth.create_user(phone="13800000000", name="压测协调员", password="gongyi-test-2026",
                                   roles=[Role.COORDINATOR], organization_id=org.id)
    password_hash = hash_password("gongyi-test-2026")
    total = projects * per_project
    db.session.execute(insert(User), [
        {"phone": f"139{i:08d}", "name": f"志愿者{i}", "password_hash": password_hash, "volunteer_no": f"FB{i:07d}",
         "created_at": now, "password_changed_at": now} for i in range(total)])
    ids = db.session.scalars(db.select(User.id).where(User.phone.like("139%")).order_by(User.id)).all()
    db.session.execute(insert(UserRole), [{"user_id": uid, "role": "volunteer"} for uid in ids])
    project_ids = []
    for p in range(projects):
        project = project_services.create_project({
            "title": f"健康加油站{p}", "category": "健康", "location": "奉城镇社区卫生服务中心",
            "starts_at": now + timedelta(hours=20), "ends_at": now + timedelta(hours=23),
            "capacity": per_project, "waitlist_capacity": 0}, actor=coordinator)
        project_services.publish(project, actor=coordinator)
        project_ids.append(project.id)
    db.session.flush()
    db.session.execute(insert(Claim), [
        {"project_id": project_ids[i // per_project], "volunteer_id": uid, "status": "confirmed",
         "created_at": now, "confirmed_at": now} for i, uid in enumerate(ids)])
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
    redis_server, redis_url = start_redis(workdir)
    try:
        from rq import Queue
        from sqlalchemy import func, select

        from credits import create_app
        from credits.config import Config
        from credits.extensions import db
        from credits.notifications.models import Delivery, Notification
        from credits.notifications.reminders import remind
        from credits.notifications.worker import QUEUE_NAME

        app = create_app(Config, {"SQLALCHEMY_DATABASE_URI": url, "REDIS_URL": redis_url,
                                  "RATELIMIT_STORAGE_URI": redis_url, "SMS_BACKEND": "console",
                                  "SECRET_KEY": "bench-secret"})
        with app.app_context():
            started = time.perf_counter()
            seed(args.projects, args.per_project)
            seconds = time.perf_counter() - started
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
        redis_server.terminate()
        redis_server.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
