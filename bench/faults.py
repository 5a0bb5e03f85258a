"""Faults survived: workers killed mid-request, PostgreSQL stopped under load, SQLite under many writers.

    .venv/bin/python bench/faults.py                       # all three, full loads
    .venv/bin/python bench/faults.py --quick               # CI: the same, smaller
    .venv/bin/python bench/faults.py --only kill           # or pg-outage, redis-outage, sms-worker, sqlite
    .venv/bin/python bench/faults.py --server granian      # the app under granian with deploy/granian.env

The app is served by gunicorn (`-c deploy/gunicorn.conf.py`) or, with --server granian, by granian with
deploy/granian.env's settings (as deploy/credits.service runs it); each scenario sets only the port and workers.

kill        3 workers on a PostgreSQL cluster of its own; `kill -9` of a random worker every ~0.5 s during a
            flash claim, then during voucher takes, then during their redemption by staff; each phase is paced over
            ~3 s (--phase-seconds) and must see at least one worker killed. A request whose connection died is sent
            again, as a till or a phone would: takes and redemptions with the same Idempotency-Key; claims have
            none, so a claim whose first attempt had committed comes back 409 already_claimed, which the checks
            accept (the claim row is there).
pg-outage   a steady stream of claims, voucher takes, wallet reads and /healthz; the cluster is stopped
            (`pg_ctl stop -m fast`) for 5 s and started again, the server untouched. While it is down every answer
            must be 503 with a JSON error; after it is up the same workers must answer again.
redis-outage the same stream with sign-ins, Redis stopped for 5 s: the rate limits fall back to each worker's
            memory (credits/auth/throttle.py) instead of answering 500, and are counted in Redis again after.
sms-worker  a burst of waitlist promotions (a holder cancels, the next in line is promoted and told) while the SMS
            worker (`flask credits worker`, RQ on Redis, SMS_BACKEND=file:…) is killed with `kill -9` every ~1.5 s
            and started again. Afterwards every promotion has exactly one inbox message and exactly one SMS in the
            file backend, and every delivery is `sent`.
sqlite      4 workers on one SQLite file; concurrent claims, voucher takes, redemptions and cancellations.
            Zero 500s: every refusal a 4xx or 503 with a JSON error, never "database is locked" as a 500. Then
            another writer holds the lock: no worker dies or is replaced meanwhile (gunicorn: no WORKER TIMEOUT).

Afterwards, for each: verify-ledger is clean, every 2xx answer is in the database in its final state, nothing is
half-made (project counters equal claim rows, escrow equals issued vouchers' coins, each redeemed voucher has its
REDEEM transaction, each voucher one HOLD, quota counters equal live vouchers), no traceback in the server's log.
Prints what happened and exits 1 when a check fails. Everything runs on 127.0.0.1 with its own PostgreSQL cluster
(initdb into a temporary folder; run as root, it uses the postgres user) and its own redis-server.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

from harness import (
    ROOT,
    SERVERS,
    AppServer,
    Load,
    Postgres,
    Redis,
    Report,
    answered_in_database,
    base_env,
    by_status,
    consistency,
    finish,
    free_port,
    http,
    make_app,
    make_instance,
    percentile,
    seed,
    verify_ledger,
    wait_until,
)

PRICES = ({"name": "精致洗车", "price": 2, "daily_quota": None}, {"name": "儿童摄影", "price": 3, "daily_quota": None})
SCENARIOS = ("kill", "pg-outage", "redis-outage", "sms-worker", "sqlite")
KINDS = {"claim": ("claim", ()), "take": ("voucher", ("redeemed", "cancelled")), "redeem": ("voucher", ()),
         "cancel": ("voucher", ())}


class Killer(threading.Thread):
    """`kill -9` a random worker of the instance every `interval` seconds (±40 %) until stopped."""

    def __init__(self, instance: AppServer, interval: float = 0.5):
        super().__init__(daemon=True)
        self.instance, self.interval, self.kills = instance, interval, 0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(self.interval * random.uniform(0.6, 1.4)):
            workers = self.instance.worker_pids()
            if workers:
                try:
                    os.kill(random.choice(workers), signal.SIGKILL)
                    self.kills += 1
                except ProcessLookupError:
                    pass

    def stop(self) -> int:
        self.halt.set()
        self.join()
        return self.kills


def claims(project_id: int, tokens: list[str], port: int) -> list[dict]:
    return [{"kind": "claim", "method": "POST", "path": f"/api/v1/projects/{project_id}/claims", "token": t,
             "port": port} for t in tokens]


def takes(service_ids: list[int], tokens: list[str], port: int, tag: str = "take") -> list[dict]:
    return [{"kind": "take", "method": "POST", "path": "/api/v1/vouchers", "token": t, "port": port,
             "body": {"service_id": service_ids[i % len(service_ids)]}, "tag": t,
             "headers": {"Idempotency-Key": f"{tag}-{i}"}} for i, t in enumerate(tokens)]


def redemptions(vouchers: list[dict], staff_tokens: list[str], port: int) -> list[dict]:
    return [{"kind": "redeem", "method": "POST", "path": "/api/v1/redemptions", "port": port,
             "token": staff_tokens[i % len(staff_tokens)], "body": {"code": v["voucher_code"]},
             "headers": {"Idempotency-Key": f"redeem-{v['id']}"}} for i, v in enumerate(vouchers)]


def staff_needed(vouchers: int) -> int:
    """Redemptions are limited per staff user (30 a minute): enough tills that the limit never bites here."""
    return max(2, vouchers // 20 + 1)


def check_answers(report: Report, results: list[dict], *, allow_503: bool = False) -> None:
    report.note(f"answers: {by_status(results)}")
    retried = sum(1 for r in results if r["attempts"] > 1)
    if retried:
        report.note(f"{retried} requests were sent again after their connection died "
                    f"({sum(r['attempts'] - 1 for r in results)} lost connections in all)")
    fivexx = Counter(r["status"] for r in results if r["status"] >= 500)
    report.check(not fivexx.get(500), "no 500", f"{fivexx.get(500, 0)}")
    if not allow_503:
        report.check(not fivexx, "no 5xx", f"{dict(fivexx)}")
    lost = sum(1 for r in results if r["status"] == 0)
    report.check(lost == 0, "every request answered in the end (after at most 3 resends)", f"{lost} unanswered")
    bad = [r for r in results if r["status"] >= 400 and not r["json_error"]]
    report.check(not bad, "every refusal is a JSON error {code, message}",
                 f"{len(bad)} are not, e.g. {[(r['kind'], r['status'], r['body']) for r in bad[:3]]}")


def check_data(report: Report, app, results: list[dict], instances: list[AppServer]) -> None:
    figures, failures = consistency(app)
    report.note(f"database: {figures}")
    report.check(not failures, "nothing half-made (counters = rows, escrow = issued vouchers, one HOLD each, "
                 "REDEEM for each redeemed, quota = live vouchers)", "; ".join(failures))
    missing = answered_in_database(app, results, KINDS)
    report.check(not missing, "every 2xx answer is in the database in its final state", "; ".join(missing))
    breaches = verify_ledger(app)
    report.check(not breaches, "verify-ledger clean", "; ".join(breaches[:5]))
    for instance in instances:
        report.check(instance.log_tracebacks() == 0, f"no traceback in {instance.server}'s log "
                     f"({instance.log_path.name})",
                     f"{instance.log_tracebacks()}")


def voucher_per_key(app) -> int:
    """Volunteers holding more than one voucher, when each asked for one under one Idempotency-Key."""
    from sqlalchemy import func, select

    from credits.extensions import db
    from credits.merchants.models import Voucher

    with app.app_context():
        doubles = db.session.scalar(select(func.count()).select_from(
            select(Voucher.volunteer_id).group_by(Voucher.volunteer_id).having(func.count() > 1).subquery()))
        db.session.remove()
        db.engine.dispose()
    return doubles


# --- the scenarios ---------------------------------------------------------------------------------------------


def kill_workers(pg: Postgres, workdir: Path, args) -> Report:
    report = Report(f"kill -9 a {args.server} worker every ~{args.kill_interval} s ({args.server}, 3 workers, "
                    "PostgreSQL)")
    redis = Redis(workdir)
    env = base_env(pg.database("credits_kill"), redis.url)
    app = make_app(env)
    n, places = args.volunteers, args.capacity
    data = seed(app, volunteers=n, projects=[{"title": "秒抢（杀进程）", "capacity": places,
                                              "waitlist_capacity": places}],
                coins=5, services=PRICES, staff=staff_needed(n))
    instance = make_instance(args.server, "kill", free_port(), 3, env, workdir)
    results: list[dict] = []
    try:
        instance.start()

        def phase(name: str, requests: list[dict]) -> list[dict]:
            if not requests:  # e.g. redemptions when no voucher take succeeded
                report.check(False, f"{name}: the phase had requests to send", "none")
                return []
            killer = Killer(instance, args.kill_interval)
            killer.start()
            # Paced to last ~phase_seconds, several kill intervals: a claim answered in a few ms let a whole
            # unpaced phase end before the first kill.
            spacing = args.concurrency * args.phase_seconds / len(requests)
            run = Load(requests, concurrency=args.concurrency, spacing=spacing, retries=3, timeout=30).wait()
            kills = killer.stop()
            latencies = [r["latency"] for r in run["results"]]
            report.note(f"{name}: {len(requests)} requests in {run['elapsed']:.1f} s, {kills} workers killed, "
                        f"p95 {percentile(latencies, 95) * 1000:.0f} ms; {by_status(run['results'])}")
            # A phase over before the first kill would pass every check below without testing anything.
            report.check(kills >= 1, f"{name}: at least one worker killed during the phase", f"{kills}")
            # The main process must outlive its workers' deaths (granian exits on what it takes for a crash loop).
            exited = instance.proc.poll()
            report.check(exited is None, f"{name}: {instance.server}'s main process still running after the phase",
                         f"exited with {exited}: {server_exit_reason(instance)}" if exited is not None else "")
            return run["results"]

        results += phase("claims", claims(data["project_ids"][0], data["tokens"], instance.port))
        taken = phase("voucher takes", takes(data["service_ids"], data["tokens"], instance.port))
        results += taken
        issued = [r for r in taken if r["status"] == 201]
        results += phase("redemptions", redemptions(issued, data["staff_tokens"], instance.port))
        replaced = wait_workers(instance, 3)
        exited = instance.proc.poll()
        report.check(replaced, f"{instance.server} replaced every killed worker (3 alive, /healthz 200)",
                     f"{len(instance.worker_pids())} alive" + (f"; {instance.server} itself exited with {exited}"
                                                               if exited is not None else ""))
    finally:
        instance.stop()
        redis.stop()
    check_answers(report, results)
    confirmed = Counter(r["state"] for r in results if r["kind"] == "claim" and r["status"] == 201)
    report.check(confirmed["confirmed"] <= places and confirmed["waitlisted"] <= places,
                 "no claim answer beyond the places", f"{dict(confirmed)}")
    redeemed = sum(1 for r in results if r["kind"] == "redeem" and r["status"] == 200)
    report.check(redeemed == len(issued), "every voucher taken was redeemed", f"{redeemed} of {len(issued)}")
    report.check(voucher_per_key(app) == 0, "a resent take (same Idempotency-Key) never made a second voucher")
    check_data(report, app, results, [instance])
    return report


def server_exit_reason(instance: AppServer) -> str:
    """The server's last error line before it exited (granian: "Worker crash loop detected, exiting")."""
    errors = [line for line in instance.log_path.read_text(errors="replace").splitlines()
              if "[ERROR]" in line or "crash loop" in line or "Shutting down" in line]
    return "; ".join(errors[-2:]) or "nothing in its log"


def wait_workers(instance: AppServer, count: int) -> bool:
    def ready() -> bool:
        return len(instance.worker_pids()) == count and http("GET", f"{instance.url}/healthz")[0] == 200

    return wait_until(ready, 30)


def pg_outage(pg: Postgres, workdir: Path, args) -> Report:
    report = Report(f"PostgreSQL stopped for {args.outage} s under load ({args.server}, 3 workers, left running)")
    redis = Redis(workdir)
    env = base_env(pg.database("credits_outage"), redis.url)
    app = make_app(env)
    n = args.volunteers
    data = seed(app, volunteers=n, projects=[{"title": "停库期间的认领", "capacity": n, "waitlist_capacity": 0}],
                coins=5, services=PRICES, staff=2)
    instance = make_instance(args.server, "outage", free_port(), 3, env, workdir)
    port = instance.port
    # More than the stream can send before `until`: each volunteer claims once (half in the first round, half in
    # the second, so claims meet the outage too) and keeps taking vouchers (the third is refused,
    # insufficient_balance) and reading the wallet, beside the load balancer's /healthz.
    mixed: list[dict] = []
    for round_ in range(12):
        for i, token in enumerate(data["tokens"]):
            if i % 2 == round_:
                mixed += claims(data["project_ids"][0], [token], port)
            mixed += takes(data["service_ids"], [token], port, tag=f"outage-{round_}-{i}")
            mixed.append({"kind": "wallet", "method": "GET", "path": "/api/v1/me/wallet", "token": token,
                          "port": port})
            mixed.append({"kind": "healthz", "method": "GET", "path": "/healthz", "port": port})
    polls: list[tuple[float, int, dict]] = []
    try:
        instance.start()
        wait_workers(instance, 3)  # /healthz answers as soon as the first worker is up
        workers_before = instance.worker_pids()
        duration = 2 + args.outage + 8
        load = Load(mixed, concurrency=8, spacing=0.1, timeout=30, until=time.time() + duration)
        time.sleep(2)
        t_down = time.time()
        pg.stop("fast")
        t_stopped = time.time()
        while time.time() < t_down + args.outage:
            status, body, _ = http("GET", f"{instance.url}/healthz", timeout=5)
            polls.append((time.time(), status, body))
            time.sleep(0.25)
        t_starting = time.time()
        pg.start()
        t_up = time.time()
        run = load.wait()
        workers_after = instance.worker_pids()
        healthy = http("GET", f"{instance.url}/healthz")[0]
    finally:
        instance.stop()
        redis.stop()
    results = run["results"]
    report.note(f"{len(results)} requests over {run['elapsed']:.1f} s; PostgreSQL stopping at "
                f"+{t_down - run['started']:.1f} s (down after {t_stopped - t_down:.2f} s), "
                f"started again at +{t_starting - run['started']:.1f} s (up after {t_up - t_starting:.2f} s)")
    # pg_ctl returns a little after the server accepts connections: "down" ends when the start was asked for.
    during = [r for r in results if r["t0"] >= t_stopped and r["t1"] <= t_starting]
    after = [r for r in results if r["t0"] >= t_up]
    report.note(f"while down: {by_status(during)}")
    report.check(len(during) > 0 and all(r["status"] == 503 and r["code"] == "unavailable" and r["json_error"]
                                         for r in during),
                 "every request while the database was down answered 503 {error: {code: unavailable}}",
                 f"{len(during)} requests")
    poll_ok = [p for p in polls if p[1] == 503 and p[2].get("status") == "unavailable"
               and p[2].get("error", {}).get("code") == "unavailable"]
    report.check(bool(polls) and len(poll_ok) == len(polls), "GET /healthz answered 503 JSON while down",
                 f"{len(poll_ok)} of {len(polls)} polls")
    first_ok = min((r["t1"] for r in after if 200 <= r["status"] < 300 and r["kind"] != "healthz"), default=None)
    recovery = first_ok - t_up if first_ok else None
    report.note(f"after the start: {by_status(after)}; first 2xx API answer {recovery:.2f} s after the start"
                if recovery is not None else f"after the start: {by_status(after)}; no 2xx API answer")
    report.check(recovery is not None and recovery < 5, "the API answers 2xx again within 5 s of the start")
    settled = [r for r in after if r["t0"] >= t_up + 2]
    report.check(bool(settled) and all(r["status"] < 500 for r in settled),
                 "no 5xx from 2 s after the start on", f"{by_status(settled)}")
    report.check(workers_before == workers_after and healthy == 200,
                 "recovered without a restart (same worker pids, /healthz 200)",
                 f"{workers_before} -> {workers_after}")
    check_answers(report, results, allow_503=True)
    check_data(report, app, results, [instance])
    return report


def redis_outage(pg: Postgres, workdir: Path, args) -> Report:
    report = Report(f"Redis stopped for {args.outage} s under load ({args.server}, 3 workers; rate limits fall "
                    "back to each worker's memory)")
    redis = Redis(workdir)
    env = base_env(pg.database("credits_redis"), redis.url)
    app = make_app(env)
    n = args.volunteers
    data = seed(app, volunteers=n, projects=[{"title": "Redis 停机期间的认领", "capacity": n,
                                              "waitlist_capacity": 0}], coins=5, services=PRICES, staff=2)
    instance = make_instance(args.server, "redis", free_port(), 3, env, workdir)
    port = instance.port
    # Every request here passes a rate limit kept in Redis: claims, sign-ins (wrong passwords, counted per phone)
    # and redemptions' neighbours, the voucher takes.
    mixed: list[dict] = []
    for round_ in range(8):
        for i, token in enumerate(data["tokens"]):
            if i % 2 == round_:
                mixed += claims(data["project_ids"][0], [token], port)
            mixed += takes(data["service_ids"], [token], port, tag=f"redis-{round_}-{i}")
            mixed.append({"kind": "sign-in", "method": "POST", "path": "/api/v1/auth/token", "port": port,
                          "body": {"phone": f"139{i:08d}", "password": "wrong-password"}})
    try:
        instance.start()
        load = Load(mixed, concurrency=8, spacing=0.1, timeout=30, until=time.time() + 2 + args.outage + 6)
        time.sleep(2)
        t_down = time.time()
        redis.stop()
        time.sleep(args.outage)
        t_starting = time.time()
        redis.start()
        run = load.wait()
        # The restarted redis-server began empty (no persistence): whatever counters it holds were counted after.
        counted_after = redis.keys("LIMITS:*")
    finally:
        instance.stop()
        redis.stop()
    results = run["results"]
    during = [r for r in results if r["t0"] >= t_down and r["t1"] <= t_starting]
    report.note(f"{len(results)} requests over {run['elapsed']:.1f} s; while Redis was down: {by_status(during)}")
    report.check(bool(during) and all(r["status"] < 500 for r in during), "no 5xx while Redis was down",
                 f"{len(during)} requests")
    signins = [r for r in during if r["kind"] == "sign-in"]
    # Without wrong-password sign-ins during the outage there is nothing to throttle: that is a failed run.
    report.check(bool(signins) and any(r["status"] == 429 for r in signins),
                 "sign-in failures were sent and still throttled while Redis was down (in memory)",
                 by_status(signins))
    log = instance.log_path.read_text(errors="replace")
    fell_back = log.count("rate limits: storage unreachable, counting in memory")
    report.check(fell_back > 0, "the limits were counted in memory while Redis was down (logged)", f"{fell_back}")
    # Each count tries Redis first: once it is back, every worker counts there again, shared by all of them.
    scopes = Counter(key.split("/")[2] for key in counted_after)
    report.check(scopes["claim"] > 0 and any(scope.startswith("login-") for scope in scopes),
                 "after the restart the limits (claims, sign-ins) were counted in Redis again", f"{dict(scopes)}")
    check_answers(report, results)
    check_data(report, app, results, [instance])
    return report


def sqlite_writers(workdir: Path, args) -> Report:
    report = Report(f"SQLite with many writers ({args.server}, 4 workers, {args.concurrency} clients)")
    redis = Redis(workdir)
    env = base_env(f"sqlite:///{workdir / 'writers.sqlite'}", redis.url)
    app = make_app(env)
    n, places = args.volunteers, args.capacity
    data = seed(app, volunteers=n, projects=[{"title": "SQLite 秒抢", "capacity": places,
                                              "waitlist_capacity": places}],
                coins=5, services=[{"name": "限量洗车", "price": 2, "daily_quota": n // 3}, PRICES[1]],
                staff=staff_needed(n))
    instance = make_instance(args.server, "sqlite", free_port(), 4, env, workdir)
    port = instance.port
    try:
        instance.start()
        first = claims(data["project_ids"][0], data["tokens"], port) + takes(data["service_ids"], data["tokens"],
                                                                             port)
        random.shuffle(first)
        run1 = Load(first, concurrency=args.concurrency, timeout=60).wait()
        issued = [r for r in run1["results"] if r["kind"] == "take" and r["status"] == 201]
        second = redemptions(issued[: len(issued) // 2], data["staff_tokens"], port)
        # The second half are cancelled by their owners while the first half are redeemed and new takes come in.
        second += [{"kind": "cancel", "method": "POST", "path": f"/api/v1/vouchers/{r['id']}/cancel",
                    "token": r["tag"], "port": port} for r in issued[len(issued) // 2:]]
        second += takes(data["service_ids"][::-1], data["tokens"], port, tag="again")
        random.shuffle(second)
        run2 = Load(second, concurrency=args.concurrency, timeout=60).wait()
        workers_before = instance.worker_pids()
        run3, locked_for = hold_write_lock(workdir / "writers.sqlite", data, port, args)
        workers_after = instance.worker_pids()
    finally:
        instance.stop()
        redis.stop()
    results = run1["results"] + run2["results"] + run3["results"]
    for name, run in (("claims + takes", run1), ("redeem + cancel + takes", run2),
                      (f"takes and wallet reads while another writer held the lock for {locked_for:.0f} s", run3)):
        latencies = [r["latency"] for r in run["results"]]
        report.note(f"{name}: {len(run['results'])} requests in {run['elapsed']:.1f} s, "
                    f"p95 {percentile(latencies, 95) * 1000:.0f} ms")
    check_answers(report, results, allow_503=True)
    unavailable = sum(1 for r in results if r["status"] == 503)
    report.check(all(r["code"] == "unavailable" for r in results if r["status"] == 503),
                 "a write that waited out every retry is a 503 unavailable, not a 500", f"{unavailable} such")
    log = instance.log_path.read_text(errors="replace")
    report.note(f"'database is locked' in {instance.server}'s log: {log.count('database is locked')} times")
    report.note(f"while the lock was held: {by_status(run3['results'])}")
    report.check(len(workers_before) == 4 and workers_before == workers_after,
                 "no worker died or was replaced while the other writer held the lock (same 4 worker pids)",
                 f"{workers_before} -> {workers_after}")
    if instance.timeout_line:
        report.check(instance.timeout_line not in log,
                     f"no worker killed for waiting on the lock ({instance.server}'s timeout)",
                     f"{log.count(instance.timeout_line)} × {instance.timeout_line!r}")
    else:
        report.note(f"not applicable: a worker killed by the server's request timeout ({instance.server} has "
                    "none; a request waits until SQLite's busy timeout and the retry budget answer 503)")
    reads = [r for r in run3["results"] if r["kind"] == "wallet"]
    report.check(bool(reads) and all(r["status"] == 200 for r in reads),
                 "reads were answered while the writer held the lock (WAL)", by_status(reads))
    confirmed = Counter(r["state"] for r in results if r["kind"] == "claim" and r["status"] == 201)
    report.check(confirmed["confirmed"] == places and confirmed["waitlisted"] == places,
                 "the flash claim on SQLite sold exactly the places", f"{dict(confirmed)}")
    check_data(report, app, results, [instance])
    return report


class Workers(threading.Thread):
    """One `flask credits worker` at a time, killed with `kill -9` every `interval` seconds (±40 %) and started
    again at once, until stopped; then one is left running."""

    def __init__(self, env: dict, log: Path, interval: float):
        super().__init__(daemon=True)
        self.env, self.log, self.interval, self.kills = env, log, interval, 0
        self.halt = threading.Event()
        self.proc = self.start_worker()

    def start_worker(self):
        import subprocess

        with open(self.log, "a") as log:
            return subprocess.Popen([str(ROOT / ".venv/bin/flask"), "--app", "wsgi", "credits", "worker"],
                                    cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)

    def run(self) -> None:
        while not self.halt.wait(self.interval * random.uniform(0.6, 1.4)):
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.kills += 1
            self.proc = self.start_worker()

    def stop(self) -> None:
        self.halt.set()
        self.join()

    def end(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def sms_worker(pg: Postgres, workdir: Path, args) -> Report:
    """Promotions in a burst, the SMS worker killed again and again: one inbox message and one SMS each."""

    report = Report("sms worker killed (kill -9) under a burst of promotions")
    redis = Redis(workdir)
    try:
        return _sms_worker(report, redis, pg, workdir, args)
    finally:
        redis.stop()  # also when a step fails: nothing of ours left running


def _sms_worker(report: Report, redis: Redis, pg: Postgres, workdir: Path, args) -> Report:
    from sqlalchemy import func, select, update

    sms_path = workdir / "sms.jsonl"
    env = {**base_env(pg.database("faults_sms"), redis.url), "SMS_BACKEND": f"file:{sms_path}",
           # A killed worker's `sending` rows are taken up again after 3 s, lost jobs after 2 s.
           "SMS_SENDING_TIMEOUT": "3", "SMS_REQUEUE_AFTER": "2", "SMS_SWEEP_SECONDS": "1"}
    app = make_app(env)
    n = args.promotions
    data = seed(app, volunteers=2 * n, projects=[{"title": f"递补测试{i}", "capacity": 1, "waitlist_capacity": 1}
                                                 for i in range(n)])
    from credits.auth.models import User
    from credits.database import in_transaction
    from credits.extensions import db
    from credits.notifications.channels import read_file_backend
    from credits.notifications.models import Delivery, Notification
    from credits.projects import services as projects
    from credits.projects.models import Claim, Project
    from credits.timeutil import utcnow

    volunteers = data["volunteer_ids"]
    with app.app_context():
        # Starting within 12 h: a promotion then goes out even in quiet hours, whenever this runs.
        now = utcnow()
        db.session.execute(update(Project).values(starts_at=now + timedelta(hours=3),
                                                  ends_at=now + timedelta(hours=5)))
        db.session.commit()

        holders = []
        for i, project_id in enumerate(data["project_ids"]):
            project = db.session.get(Project, project_id)
            first, second = db.session.get(User, volunteers[2 * i]), db.session.get(User, volunteers[2 * i + 1])
            holders.append(projects.claim(project, volunteer=first).id)
            projects.claim(project, volunteer=second)
        db.session.commit()
        db.session.remove()

    workers = Workers(env, workdir / "sms-worker.log", args.worker_kill_interval)
    workers.start()
    t0 = time.time()
    spacing = args.burst_seconds / n

    def cancel(claim_id: int) -> None:
        claim = db.session.get(Claim, claim_id)
        projects.cancel_claim(claim, actor=claim.volunteer)

    def burst(share: list[int]) -> None:
        with app.app_context():
            for claim_id in share:
                in_transaction(lambda claim_id=claim_id: cancel(claim_id))
                time.sleep(spacing * 4)
            db.session.remove()

    threads = [threading.Thread(target=burst, args=(holders[k::4],)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    burst_done = time.time() - t0
    while time.time() - t0 < args.burst_seconds + 3:  # a few more kills while the queue drains
        time.sleep(0.2)
    workers.stop()

    def all_sent() -> bool:
        with app.app_context():
            left = db.session.scalar(select(func.count()).select_from(Delivery).where(Delivery.status != "sent"))
            db.session.remove()
        return left == 0

    drained = wait_until(all_sent, 90, 0.5)
    workers.end()
    report.note(f"{n} promotions in {burst_done:.1f} s; worker killed {workers.kills} times; "
                f"all sent {time.time() - t0:.1f} s after the burst began")
    report.check(workers.kills >= 1, "the worker was killed at least once during the burst", f"{workers.kills}")
    report.check(drained, "every delivery ended `sent` after the kills (the sweep took up what they left)")
    with app.app_context():
        promoted = db.session.scalars(select(Claim.volunteer_id).where(
            Claim.status == "confirmed", Claim.volunteer_id.in_(volunteers[1::2]))).all()
        notes = db.session.execute(select(Notification.id, Notification.user_id)
                                   .where(Notification.kind == "promotion")).all()
        retried = db.session.scalar(select(func.count()).select_from(Delivery).where(Delivery.attempts > 1))
        db.session.remove()
        db.engine.dispose()
    lines = read_file_backend(str(sms_path))
    per_key = Counter(line["key"] for line in lines)
    report.check(len(promoted) == n, "every waitlisted volunteer was promoted", f"{len(promoted)} of {n}")
    report.check(sorted(user for _, user in notes) == sorted(promoted),
                 "exactly one inbox message per promotion", f"{len(notes)} messages")
    report.check(set(per_key) == {f"notification:{note_id}" for note_id, _ in notes}
                 and all(count == 1 for count in per_key.values()),
                 "exactly one SMS per promotion in the file backend",
                 f"{len(lines)} lines, {sum(c - 1 for c in per_key.values())} doubled")
    report.note(f"deliveries tried more than once (a kill caught them mid-way): {retried}")
    log = (workdir / "sms-worker.log").read_text(errors="replace")
    report.check("Traceback" not in log.replace("SystemExit", ""), "no traceback in the worker's log",
                 f"{log.count('Traceback')}")
    return report


def hold_write_lock(path: Path, data: dict, port: int, args) -> tuple[dict, float]:
    """Another writer (a long batch job, a shell left in a transaction) holds SQLite's write lock for longer than
    gunicorn lets a request run (granian has no such limit), while volunteers keep taking vouchers and reading
    their wallets."""
    import sqlite3

    holder = sqlite3.connect(path, isolation_level=None, timeout=60)
    requests = []
    for i, token in enumerate(data["tokens"]):
        requests += takes(data["service_ids"], [token], port, tag=f"locked-{i}")
        requests.append({"kind": "wallet", "method": "GET", "path": "/api/v1/me/wallet", "token": token,
                         "port": port})
    holder.execute("BEGIN IMMEDIATE")
    t0 = time.time()
    load = Load(requests, concurrency=8, spacing=0.2, timeout=90, until=t0 + args.lock_hold + 5)
    time.sleep(args.lock_hold)
    holder.execute("COMMIT")
    held = time.time() - t0
    holder.close()
    return load.wait(), held


def run(args) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="faults_"))
    reports: list[Report] = []
    pg = None
    try:
        if {"kill", "pg-outage", "redis-outage", "sms-worker"} & set(args.only):
            pg = Postgres(workdir)
            print(f"own PostgreSQL cluster on port {pg.port} ({pg.dir})", flush=True)
        if "kill" in args.only:
            reports.append(kill_workers(pg, workdir, args))
        if "pg-outage" in args.only:
            reports.append(pg_outage(pg, workdir, args))
        if "redis-outage" in args.only:
            reports.append(redis_outage(pg, workdir, args))
        if "sms-worker" in args.only:
            reports.append(sms_worker(pg, workdir, args))
        if "sqlite" in args.only:
            reports.append(sqlite_writers(workdir, args))
    finally:
        if pg is not None:
            pg.destroy()
    code = finish(reports)
    if code == 0 and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"kept {workdir} ({args.server} logs, PostgreSQL's server.log)")
    return code


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smaller loads, for CI")
    p.add_argument("--only", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    p.add_argument("--server", choices=SERVERS, default="gunicorn",
                   help="the app server: gunicorn with deploy/gunicorn.conf.py, granian with deploy/granian.env")
    p.add_argument("--volunteers", type=int)
    p.add_argument("--capacity", type=int, help="places (and as many on the waitlist)")
    p.add_argument("--concurrency", type=int)
    p.add_argument("--kill-interval", type=float, default=0.5)
    p.add_argument("--phase-seconds", type=float, default=3.0,
                   help="kill: each phase's requests are spread over about this long")
    p.add_argument("--outage", type=float, default=5.0, help="seconds PostgreSQL stays down")
    p.add_argument("--lock-hold", type=float,
                   help="seconds another writer holds SQLite's write lock (default 35, beyond gunicorn's timeout; "
                        "--quick: 12, beyond SQLITE_BUSY_TIMEOUT)")
    p.add_argument("--promotions", type=int, help="sms-worker: projects whose one place passes to the waitlist")
    p.add_argument("--burst-seconds", type=float, default=6.0, help="sms-worker: how long the burst lasts")
    p.add_argument("--worker-kill-interval", type=float, default=1.5)
    p.add_argument("--keep", action="store_true", help="keep the temporary directory with the logs")
    args = p.parse_args()
    for name, quick, full in (("volunteers", 150, 500), ("capacity", 20, 60), ("concurrency", 20, 40),
                              ("promotions", 60, 300),
                              ("lock_hold", 12.0, 35.0)):
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    sys.exit(run(args))


if __name__ == "__main__":
    main()
