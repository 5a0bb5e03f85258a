"""Messages benchmark (issue 15): a project with N confirmed claims is cancelled.

    .venv/bin/python bench/messages.py                  # 500 claims, with 1 and then 2 SMS workers
    .venv/bin/python bench/messages.py --claims 100 --workers 1

For each worker count: a fresh schema on PostgreSQL (the database given, dropped and recreated), one project with
N confirmed claims, W `flask credits worker` processes on a redis-server of our own, SMS_BACKEND=file:…. Then the
coordinator cancels the project in one transaction, as the API would. Prints the seconds until that transaction
has committed (all N inbox rows exist: they are written in it), until the N delivery ids are in Redis, and until
all N SMS are in the file backend. The town's time zone is set to one where it is noon now, so that quiet hours
do not hold the SMS whenever this runs. Only for 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from harness import ROOT, Redis, base_env, ensure_pg_database, make_app, seed, wait_until

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/credits_messages_bench"


def noon_zone() -> str:
    """An Etc/GMT zone where the local hour is about 12 now (Etc/GMT-8 is UTC+8)."""
    offset = (12 - datetime.now(UTC).hour + 12) % 24 - 12
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"


def lines(path: Path) -> int:
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def one_run(claims: int, workers: int, pg_url: str, workdir: Path) -> dict:
    from sqlalchemy import func, select

    redis = Redis(workdir)
    sms = workdir / f"sms-w{workers}.jsonl"
    env = {**base_env(pg_url, redis.url), "SMS_BACKEND": f"file:{sms}", "CREDITS_TIMEZONE": os.environ[
        "CREDITS_TIMEZONE"]}
    app = make_app(env)
    app.config["SMS_BACKEND"] = env["SMS_BACKEND"]
    data = seed(app, volunteers=claims, projects=[{"title": "取消压测", "capacity": claims, "waitlist_capacity": 0}])
    from credits.auth.models import User
    from credits.database import in_transaction
    from credits.extensions import db
    from credits.notifications.models import Notification
    from credits.projects import services as projects
    from credits.projects.models import Project

    with app.app_context():
        project = db.session.get(Project, data["project_ids"][0])
        for uid in data["volunteer_ids"]:
            projects.claim(project, volunteer=db.session.get(User, uid))
        db.session.commit()
        db.session.remove()
    procs = []
    with open(workdir / "workers.log", "a") as log:
        for _ in range(workers):
            procs.append(subprocess.Popen([str(ROOT / ".venv/bin/flask"), "--app", "wsgi", "credits", "worker"],
                                          cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
    from redis import Redis as Client
    from rq import Worker

    client = Client.from_url(redis.url)
    if not wait_until(lambda: len(Worker.all(connection=client)) == workers, 30, 0.1):
        raise RuntimeError("the workers did not start")
    timings: dict = {}
    with app.app_context():
        coordinator = db.session.scalars(select(User).where(User.phone == "13800000000")).one()
        project = db.session.get(Project, data["project_ids"][0])
        done_at: dict = {}

        def cancel():
            projects.cancel_project(project, actor=coordinator)
            done_at["flushed"] = time.perf_counter()

        t0 = time.perf_counter()
        in_transaction(cancel)  # commits, then hands the delivery ids to Redis
        timings["enqueued"] = time.perf_counter() - t0
        timings["inbox"] = done_at["flushed"] - t0  # the rows exist at commit, right after
        inbox = db.session.scalar(select(func.count()).select_from(Notification))
        db.session.remove()
        db.engine.dispose()
    sent = wait_until(lambda: lines(sms) >= claims, 300, 0.02)
    timings["sms"] = time.perf_counter() - t0
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(timeout=60)
    redis.stop()
    return {"workers": workers, "inbox_rows": inbox, "sms_lines": lines(sms), "all_sent": sent, **timings}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--claims", type=int, default=500)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--pg-url", default=PG_URL, help="dropped and recreated (default: %(default)s)")
    args = p.parse_args()
    os.environ["CREDITS_TIMEZONE"] = noon_zone()
    ensure_pg_database(args.pg_url)
    workdir = Path(tempfile.mkdtemp(prefix="messages_"))
    print(f"{args.claims} confirmed claims, project cancelled; time zone {os.environ['CREDITS_TIMEZONE']}; "
          f"logs in {workdir}", flush=True)
    failed = False
    for workers in args.workers:
        r = one_run(args.claims, workers, args.pg_url, workdir)
        print(f"workers={r['workers']}: inbox rows {r['inbox_rows']} in the cancel transaction "
              f"({r['inbox']:.2f} s to flush them, {r['enqueued']:.2f} s to commit and enqueue); "
              f"{r['sms_lines']} SMS in the file backend after {r['sms']:.2f} s "
              f"({r['sms_lines'] / r['sms']:.0f} SMS/s)", flush=True)
        failed |= r["inbox_rows"] != args.claims or r["sms_lines"] != args.claims or not r["all_sent"]
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
