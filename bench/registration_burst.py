"""Registration burst (issue 16.8): what 80 registrations at once cost everyone else, argon2 before and after.

    .venv/bin/python bench/registration_burst.py            # 80 registrations, 3 runs per profile, medians
    .venv/bin/python bench/registration_burst.py --quick    # CI: 30 registrations, 1 run per profile (< 60 s)

Every registration hashes a password with argon2id. With argon2-cffi's defaults (RFC 9106's low-memory profile:
64 MiB, t=3, p=4) 80 of them at once held every gunicorn worker for 18.7 s, and a plain `GET /projects` waited
15.5 s behind them. The app now hashes with OWASP's m=19 MiB, t=2, p=1 and limits registrations per address.

For each of PASSWORD_HASH=rfc9106-low ("before") and PASSWORD_HASH=owasp ("after"), runs interleaved, it starts
gunicorn (`-c deploy/gunicorn.conf.py -w 4`, CREDITS_ENV=production, TRUSTED_PROXY_COUNT=1) and:

1. warms every worker up (a few registrations and project lists);
2. baseline: 4 clients loop on `GET /api/v1/projects` for a few seconds, nothing else running;
3. burst: the same 4 clients keep looping while a load-generator process sends the N registrations
   (`POST /api/v1/auth/register`) at once, each with its own X-Forwarded-For, so the per-address limit
   (REGISTER_RATE_LIMIT, 10 an hour) refuses none of them and the hashing is what is measured. It prints the
   burst's wall time, registrations/s, the answers, and p50/p95/max of the project lists sent during the burst.

Then, once, with owasp: 80 registrations from ONE address must give exactly 10 × 201 and 70 × 429.

Checks (exit 1 when any fails): every registration of the bursts answered 201; the one-address burst gave
exactly 10 × 201 (the rest 429); every project list answered 200; the p95 of `GET /projects` during the burst is
lower with owasp than with rfc9106-low (medians over the runs); no traceback in gunicorn's log.

Only for 127.0.0.1: it drops and recreates the schema of the database it is given (default credits_regburst on
the local server, created if missing) and runs a redis-server of its own on a spare port.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from harness import (
    Gunicorn,
    Load,
    Redis,
    Report,
    base_env,
    by_status,
    ensure_pg_database,
    finish,
    free_port,
    http,
    make_app,
    percentile,
    seed,
)

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/credits_regburst"
PROFILES = ("rfc9106-low", "owasp")  # before, after
LABEL = {"rfc9106-low": "before (rfc9106-low: 64 MiB, t=3, p=4)", "owasp": "after (owasp: 19 MiB, t=2, p=1)"}
PROJECTS_PATH = "/api/v1/projects"


class Batches:
    """Phones and addresses never used before in this run: each batch of registrations gets its own number."""

    def __init__(self):
        self.next = 0

    def registrations(self, count: int, port: int, one_address: bool = False) -> list[dict]:
        tag, self.next = self.next, self.next + 1
        assert tag < 100 and count <= 40_000
        return [{"kind": "register", "method": "POST", "path": "/api/v1/auth/register", "port": port,
                 # 15TT NNNNNNN: 11 digits, ^1[3-9]\d{9}$, unique across batches; a password nobody else uses
                 "body": {"phone": f"15{tag:02d}{i:07d}", "name": f"注册压测{tag}-{i}",
                          "password": f"burst-pass-2026-{tag}-{i}"},
                 "headers": {"X-Forwarded-For": f"10.{tag}.0.1" if one_address
                             else f"10.{tag}.{i // 200}.{i % 200 + 1}"}}
                for i in range(count)]


class Stream:
    """`clients` threads looping on GET /api/v1/projects (urllib, a new connection each time, as gunicorn's sync
    workers close every connection) until stopped; each request's (sent, answered, status)."""

    def __init__(self, url: str, clients: int):
        self.url, self.clients = url + PROJECTS_PATH, clients
        self.samples: list[tuple[float, float, int]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(clients)]

    def _loop(self) -> None:
        while not self._stop.is_set():
            t0 = time.time()
            status = http("GET", self.url, timeout=120)[0]
            with self._lock:
                self.samples.append((t0, time.time(), status))

    def start(self) -> Stream:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> list[tuple[float, float, int]]:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=180)
        return self.samples


def latencies(samples: list[tuple[float, float, int]], start: float, end: float) -> list[float]:
    """Latencies of the requests sent in [start, end)."""
    return [t1 - t0 for t0, t1, _ in samples if start <= t0 < end]


def hash_seconds(profile: str, repeat: int = 5) -> float:
    """The median time of one hash with the profile, in this process (no other load of ours running)."""
    from credits.auth.passwords import PROFILES as HASHERS

    times = []
    for i in range(repeat):
        t0 = time.perf_counter()
        HASHERS[profile].hash(f"burst-pass-2026-timing-{i}")
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def one_run(profile: str, run_no: int, env: dict, workdir: Path, batches: Batches, args,
            report: Report, limit_check: bool) -> dict:
    instance = Gunicorn(f"{profile}-{run_no}", free_port(), args.workers, {**env, "PASSWORD_HASH": profile},
                        workdir)
    figures: dict = {"profile": profile, "run": run_no}
    try:
        instance.start()
        # Warm-up: every worker serves a registration (zxcvbn's list, argon2's first allocation) and some lists.
        warm = Load(batches.registrations(args.workers, instance.port), concurrency=args.workers).wait()
        for _ in range(args.workers * 3):
            http("GET", instance.url + PROJECTS_PATH)
        figures["warm_up"] = by_status(warm["results"])
        figures["load_avg"] = os.getloadavg()[0]  # the machine is shared: how busy it was before this run

        stream = Stream(instance.url, args.clients).start()
        time.sleep(args.baseline)
        t_mark = time.time()
        # The burst: its registrations go out together at start_at, the stream going on meanwhile.
        burst = Load(batches.registrations(args.registrations, instance.port), concurrency=args.registrations,
                     timeout=300, start_at=time.time() + 1.0)
        run = burst.wait()
        time.sleep(0.5)
        samples = stream.stop()

        results = run["results"]
        b_start, b_end = run["started"], max(r["t1"] for r in results)
        baseline = latencies(samples, 0, t_mark)
        during = latencies(samples, b_start, b_end)
        figures.update({
            "burst_s": b_end - b_start, "reg_per_s": len(results) / (b_end - b_start),
            "statuses": by_status(results), "created": sum(r["status"] == 201 for r in results),
            "n": len(results),
            "reg_p50": percentile([r["latency"] for r in results], 50),
            "reg_max": max(r["latency"] for r in results),
            "base_n": len(baseline), "base_p50": percentile(baseline, 50), "base_p95": percentile(baseline, 95),
            "during_n": len(during), "during_p50": percentile(during, 50), "during_p95": percentile(during, 95),
            "during_max": max(during, default=float("nan")),
            "list_statuses": Counter(s for _, _, s in samples),
        })
        report.note(f"run {run_no}, {profile} (load average {figures['load_avg']:.1f}): {figures['n']} "
                    f"registrations in {figures['burst_s']:.2f} s "
                    f"= {figures['reg_per_s']:.1f}/s ({figures['statuses']}; each p50 {figures['reg_p50']:.2f} s, "
                    f"max {figures['reg_max']:.2f} s); GET /projects during the burst: {figures['during_n']} "
                    f"answered, p50 {ms(figures['during_p50'])}, p95 {ms(figures['during_p95'])}, max "
                    f"{ms(figures['during_max'])}; baseline ({figures['base_n']} with no burst): p50 "
                    f"{ms(figures['base_p50'])}, p95 {ms(figures['base_p95'])}")
        report.check(figures["created"] == figures["n"], f"run {run_no}, {profile}: every registration answered 201",
                     figures["statuses"])
        report.check(set(figures["list_statuses"]) == {200}, f"run {run_no}, {profile}: every GET /projects 200",
                     str(dict(figures["list_statuses"])))
        report.check(figures["during_n"] > 0, f"run {run_no}, {profile}: project lists were sent during the burst")

        if limit_check:
            one = Load(batches.registrations(80, instance.port, one_address=True), concurrency=80,
                       timeout=120).wait()["results"]
            counts = Counter(r["status"] for r in one)
            figures["one_address"] = by_status(one)
            report.note(f"80 registrations from one address ({profile}): {figures['one_address']}")
            report.check(counts[201] == 10 and counts[429] == 70,
                         "one address: exactly 10 × 201, the other 70 × 429 (REGISTER_RATE_LIMIT)",
                         figures["one_address"])
    finally:
        instance.stop()
    if instance.log_path.exists():
        report.check(instance.log_tracebacks() == 0, f"no traceback in {instance.log_path.name}")
    return figures


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def median_of(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def bracket(runs: list[dict], key: str, fmt) -> str:
    value = fmt(median_of(runs, key))
    return value if len(runs) == 1 else f"{value} ({', '.join(fmt(r[key]) for r in runs)})"


def table(by_profile: dict[str, list[dict]]) -> None:
    rows = [("registrations", lambda rs: str(rs[0]["n"])),
            ("burst wall time", lambda rs: bracket(rs, "burst_s", lambda v: f"{v:.2f} s")),
            ("registrations/s", lambda rs: bracket(rs, "reg_per_s", lambda v: f"{v:.1f}")),
            ("answers", lambda rs: "; ".join(sorted({r["statuses"] for r in rs}))),
            ("GET /projects during burst: p50", lambda rs: bracket(rs, "during_p50", ms)),
            ("GET /projects during burst: p95", lambda rs: bracket(rs, "during_p95", ms)),
            ("GET /projects during burst: max", lambda rs: bracket(rs, "during_max", ms)),
            ("GET /projects, no burst: p95", lambda rs: bracket(rs, "base_p95", ms))]
    runs = len(next(iter(by_profile.values())))
    print(f"\n{'median of ' + str(runs) + ' runs' if runs > 1 else 'one run'} (the runs in brackets)")
    width = max(len(name) for name, _ in rows)
    for profile in PROFILES:
        print(f"\n{LABEL[profile]}")
        for name, cell in rows:
            print(f"  {name:<{width}}  {cell(by_profile[profile])}")


def run(args) -> int:
    t_begin = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="registration_burst_"))
    redis = Redis(workdir)
    reports: list[Report] = []
    try:
        ensure_pg_database(args.pg_url)
        env = {**base_env(args.pg_url, redis.url), "TRUSTED_PROXY_COUNT": "1"}
        app = make_app(env)
        t0 = time.monotonic()
        seed(app, volunteers=1, projects=[{"title": f"社区服务项目{i}", "capacity": 30, "waitlist_capacity": 10}
                                          for i in range(20)])
        with app.app_context():
            # What is measured is the password hash: registrations without an SMS code to look up (issue 15).
            from credits.extensions import db
            from credits.settings.models import PolicySetting

            db.session.merge(PolicySetting(key="phone_verification", value="off"))
            db.session.commit()
        print(f"seeded 20 published projects in {time.monotonic() - t0:.1f} s; Redis on port {redis.port}; "
              f"{os.cpu_count()} CPUs", flush=True)
        for profile in PROFILES:
            repeat = 1 if args.quick else 5
            print(f"one argon2 hash, {LABEL[profile]}: {hash_seconds(profile, repeat) * 1000:.0f} ms (median of "
                  f"{repeat}, this process; load average {os.getloadavg()[0]:.1f})", flush=True)

        report = Report(f"{args.registrations} registrations at once, each from its own address, beside "
                        f"{args.clients} clients looping on GET {PROJECTS_PATH} (gunicorn -w {args.workers}; "
                        f"{args.runs} run(s) per profile)")
        reports.append(report)
        batches = Batches()
        by_profile: dict[str, list[dict]] = {p: [] for p in PROFILES}
        for run_no in range(1, args.runs + 1):
            for profile in PROFILES:
                last = run_no == args.runs and profile == "owasp"
                by_profile[profile].append(one_run(profile, run_no, env, workdir, batches, args, report,
                                                   limit_check=last))
        table(by_profile)
        before = median_of(by_profile["rfc9106-low"], "during_p95")
        after = median_of(by_profile["owasp"], "during_p95")
        print(f"\np95 GET /projects during the burst, before ÷ after: {before / after:.1f}× "
              f"({ms(before)} → {ms(after)}); burst wall time before ÷ after: "
              f"{median_of(by_profile['rfc9106-low'], 'burst_s') / median_of(by_profile['owasp'], 'burst_s'):.1f}×")
        report.check(after < before, "p95 of GET /projects during the burst is lower with owasp than rfc9106-low",
                     f"{ms(after)} vs {ms(before)}")
    finally:
        redis.stop()
    code = finish(reports)
    print(f"{time.monotonic() - t_begin:.0f} s in all; load average now {os.getloadavg()[0]:.1f}")
    if code == 0 and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"kept {workdir} (gunicorn logs)")
    return code


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="CI: 30 registrations, one run per profile")
    p.add_argument("--pg-url", default=PG_URL, help="dropped and recreated (default: %(default)s)")
    p.add_argument("--workers", type=int, default=4, help="gunicorn workers (the deploy's default on 2 cores)")
    p.add_argument("--registrations", type=int, help="registrations in each burst (80; --quick 30)")
    p.add_argument("--runs", type=int, help="runs per profile (3; --quick 1)")
    p.add_argument("--clients", type=int, default=4, help="clients looping on GET /projects")
    p.add_argument("--baseline", type=float, help="seconds of GET /projects alone before each burst (5; --quick 2)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory with the logs")
    args = p.parse_args()
    for name, quick, full in (("registrations", 30, 80), ("runs", 1, 3), ("baseline", 2.0, 5.0)):
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    sys.exit(run(args))


if __name__ == "__main__":
    main()
