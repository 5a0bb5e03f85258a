"""Flash-claim benchmark (秒抢): a flash crowd of volunteers claims one project the moment it opens.

Starts gunicorn against a scratch database, creates one project (capacity 100, waitlist 100) and 2,000 volunteers
with API tokens, publishes the project to open a few seconds later, and fires every claim at once from a separate
load-generator process (asyncio, one connection per request, N concurrent clients). The same server answers
GET /healthz with the same concurrency and request count before and after the claims, for the ratio. It prints
throughput, latency percentiles and outcome counts, checks the database, and exits non-zero when any assertion
fails (see bench/README.md).

    .venv/bin/python bench/flash_claim.py                 # PostgreSQL database credits_bench, 4 workers
    .venv/bin/python bench/flash_claim.py --db sqlite     # a temporary SQLite file

Only for 127.0.0.1: the script drops and recreates the schema of the database it is given.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness import HOST, ROOT, free_port, http, parse_response, request_bytes, seed

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/credits_bench"
APPLICATION_NAME = "flash_claim"  # tags the app's PostgreSQL connections, to count their CPU
YARDSTICK_APPLICATION_NAME = "flash_claim_yardstick"  # bench/yardstick.py's
WARMUP_VOLUNTEERS = 60  # extra volunteers who claim a small warm-up project, so every worker has run the claim path


# --- load generator (runs in its own process) ----------------------------------------------------------------


async def _one(port: int, payload: bytes, timeout: float) -> tuple[int, dict | None, str | None]:
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(HOST, port)
            writer.write(payload)
            await writer.drain()
            raw = await reader.read()  # Connection: close, so the response ends at EOF
        status, body = parse_response(raw)
        return status, body, None
    except (OSError, TimeoutError, ValueError, IndexError) as exc:
        return 0, None, type(exc).__name__
    finally:
        if writer is not None:
            writer.close()


class KeptAlive:
    """One client's HTTP/1.1 connection, kept open from one request to the next as a phone's would be; opened
    again when the server closes it (gunicorn's sync workers close every one)."""

    def __init__(self, port: int):
        self.port, self.reader, self.writer = port, None, None

    async def send(self, payload: bytes, timeout: float) -> tuple[int, dict | None, str | None]:
        try:
            async with asyncio.timeout(timeout):
                if self.writer is None:
                    self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
                self.writer.write(payload)
                await self.writer.drain()
                head = await self.reader.readuntil(b"\r\n\r\n")
                lines = head.lower().split(b"\r\n")
                length = next((int(x.split(b":", 1)[1]) for x in lines if x.startswith(b"content-length:")), None)
                if length is None:  # no length: the body ends when the server closes
                    body, closes = await self.reader.read(), True
                else:
                    body = await self.reader.readexactly(length)
                    closes = any(x.startswith(b"connection:") and b"close" in x for x in lines)
            if closes:
                self.close()
            status, parsed = parse_response(head + body)
            return status, parsed, None
        except (OSError, TimeoutError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
            self.close()
            return 0, None, type(exc).__name__

    async def connect(self) -> None:
        """Open the connection ahead of the first request (the phone had the project's page open)."""
        try:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        except OSError:
            self.reader = self.writer = None  # the first request tries again

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def keepalive_bytes(r: dict) -> bytes:
    return request_bytes(r).replace(b"Connection: close\r\n", b"Connection: keep-alive\r\n", 1)


async def _fire(spec: dict) -> dict:
    """Send every request of the spec with `concurrency` clients, all released at `start_at` (epoch seconds).
    With `keepalive` each client sends its requests over one HTTP/1.1 connection; else one connection each."""
    port, timeout, keepalive = spec["port"], spec["timeout"], spec.get("keepalive", False)
    payloads = [(keepalive_bytes if keepalive else request_bytes)(r) for r in spec["requests"]]
    results: list = [None] * len(payloads)
    queue = iter(range(len(payloads)))
    go = asyncio.Event()

    async def client() -> None:
        conn = KeptAlive(port) if keepalive else None
        if conn:
            await conn.connect()
        await go.wait()
        for i in queue:
            t0 = time.perf_counter()
            status, body, error = await (conn.send(payloads[i], timeout) if conn else _one(port, payloads[i], timeout))
            t1 = time.perf_counter()
            body = body if isinstance(body, dict) else {}
            code = (body.get("error") or {}).get("code") if status >= 400 else body.get("status")
            results[i] = {"status": status, "code": error or code, "latency": t1 - t0, "done": t1 - t_start,
                          "id": body.get("id"), "waitlist_position": body.get("waitlist_position")}
        if conn:
            conn.close()

    tasks = [asyncio.create_task(client()) for _ in range(spec["concurrency"])]
    late, t_start = 0.0, 0.0
    if spec.get("start_at"):
        await asyncio.sleep(max(0.0, spec["start_at"] - time.time() - 0.02))
        while time.time() < spec["start_at"]:
            await asyncio.sleep(0.001)
        late = time.time() - spec["start_at"]
    t_start = time.perf_counter()
    go.set()
    await asyncio.gather(*tasks)
    return {"elapsed": time.perf_counter() - t_start, "late": late, "results": results}


def loadgen_main() -> None:
    """`flash_claim.py --loadgen`: read a spec as JSON on stdin, write the results as JSON on stdout."""
    spec = json.load(sys.stdin)
    json.dump(asyncio.run(_fire(spec)), sys.stdout)


def run_loadgen(spec: dict, *, limit: float) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--loadgen"], input=json.dumps(spec), capture_output=True,
                          text=True, timeout=limit, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout)


# --- figures ---------------------------------------------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def summarise(*runs: dict) -> dict:
    """Throughput and latency over one or more runs of a phase (healthz runs before and after the claims)."""
    latencies = sorted(r["latency"] for run in runs for r in run["results"])
    elapsed = sum(run["elapsed"] for run in runs)
    return {"requests": len(latencies), "elapsed_s": elapsed, "rps": len(latencies) / elapsed,
            "p50_ms": percentile(latencies, 50) * 1000, "p95_ms": percentile(latencies, 95) * 1000,
            "p99_ms": percentile(latencies, 99) * 1000, "max_ms": latencies[-1] * 1000 if latencies else 0.0}


def outcome(result: dict) -> str:
    if result["status"] == 201 and result["code"] in ("confirmed", "waitlisted"):
        return result["code"]
    if result["status"] == 409 and result["code"] == "project_full":
        return "project_full"
    return "other"


def timeline(run: dict) -> dict:
    """When the places were all handed out, and how fast the refusals came after that."""
    won = [r["done"] for r in run["results"] if r["status"] == 201]
    settled = max(won, default=0.0)
    after = sum(1 for r in run["results"] if r["done"] > settled)
    rest = run["elapsed"] - settled
    return {"places_settled_s": settled, "refusals_after": after, "refusal_rps": after / rest if rest > 0 else 0.0}


# --- database --------------------------------------------------------------------------------------------------


def prepare(args, app) -> dict:
    """A fresh schema, a coordinator, a draft project, a warm-up project that is open now, and the volunteers
    with tokens (bench/harness.py's seed)."""
    total = args.volunteers + WARMUP_VOLUNTEERS
    seeded = seed(app, volunteers=total, projects=[
        {"title": "秒抢压测项目", "capacity": args.capacity, "waitlist_capacity": args.waitlist, "draft": True},
        {"title": "预热项目", "capacity": 5, "waitlist_capacity": 5},
        {"title": "标尺项目", "capacity": args.capacity, "waitlist_capacity": args.waitlist, "draft": True}])
    tokens, ids = seeded["tokens"], seeded["volunteer_ids"]
    project_id, warmup_id, yardstick_id = seeded["project_ids"]
    return {"coordinator_token": seeded["coordinator_token"], "project_id": project_id, "warmup_project_id": warmup_id,
            "yardstick_project_id": yardstick_id,
            "volunteer_ids": ids[:args.volunteers], "tokens": tokens[:args.volunteers],
            "warmup_tokens": tokens[args.volunteers:]}


def check_database(app, project_id: int, responses: list[dict], volunteer_ids: list[int], args) -> tuple[dict, list]:
    """Counters equal rows, one live claim per volunteer, and every 201 answered is the row the database holds."""
    from sqlalchemy import func, select

    from credits.extensions import db
    from credits.projects.models import Claim, Project

    failures = []
    with app.app_context():
        project = db.session.get(Project, project_id)
        rows = db.session.execute(select(Claim.id, Claim.volunteer_id, Claim.status, Claim.waitlist_seq)
                                  .where(Claim.project_id == project_id)).all()
        per_status = Counter(r.status for r in rows)
        duplicates = db.session.execute(
            select(Claim.volunteer_id, func.count()).where(Claim.project_id == project_id)
            .group_by(Claim.volunteer_id).having(func.count() > 1)).all()
        figures = {"confirmed_count": project.confirmed_count, "waitlist_count": project.waitlist_count,
                   "waitlist_seq": project.waitlist_seq, "rows": dict(per_status)}
        db.session.remove()
        db.engine.dispose()

    def expect(ok: bool, message: str) -> None:
        if not ok:
            failures.append(message)

    expect(project.confirmed_count == per_status["confirmed"] == args.capacity,
           f"confirmed: counter {project.confirmed_count}, rows {per_status['confirmed']}, want {args.capacity}")
    expect(project.waitlist_count == per_status["waitlisted"] == args.waitlist,
           f"waitlisted: counter {project.waitlist_count}, rows {per_status['waitlisted']}, want {args.waitlist}")
    expect(len(rows) == per_status["confirmed"] + per_status["waitlisted"], f"other claim rows: {dict(per_status)}")
    expect(not duplicates, f"volunteers with several claims: {duplicates[:5]}")
    seqs = sorted(r.waitlist_seq for r in rows if r.status == "waitlisted")
    expect(seqs == list(range(1, args.waitlist + 1)), "waitlist_seq is not 1..waitlist in the database")
    answered = {(volunteer_ids[i], r["id"], r["code"]) for i, r in enumerate(responses) if r["status"] == 201}
    stored = {(r.volunteer_id, r.id, r.status) for r in rows}
    expect(answered == stored, f"201 answers and claim rows differ: {len(answered ^ stored)} mismatches")
    return figures, failures


# --- CPU accounting: on a small machine the server, PostgreSQL, Redis and the load generator share the cores --------


TICK = os.sysconf("SC_CLK_TCK")


def app_backends(app, name: str = APPLICATION_NAME) -> set[int]:
    """The PostgreSQL backends serving the server's workers (tagged by application_name), not other clients'."""
    from sqlalchemy import text

    from credits.extensions import db

    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        return set()
    with app.app_context():
        pids = set(db.session.scalars(text(
            "SELECT pid FROM pg_stat_activity WHERE application_name = :name AND pid <> pg_backend_pid()"),
            {"name": name}))
        db.session.remove()
    return pids


def cpu_snapshot(arbiter_pid: int, pg_pids: set[int]) -> dict:
    """CPU seconds so far: the app (gunicorn), its postgres backends, redis, the load generator, the machine."""
    import resource

    totals = Counter(app=0.0, postgres=0.0, redis=0.0)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        ppid, used = int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK
        if int(entry.name) == arbiter_pid or ppid == arbiter_pid:
            totals["app"] += used
        elif int(entry.name) in pg_pids:
            totals["postgres"] += used
        elif comm.startswith("redis-server"):
            totals["redis"] += used
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    totals["loadgen"] = children.ru_utime + children.ru_stime  # the only child reaped while a phase runs
    cpu = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    totals["machine"] = (sum(map(int, cpu)) - int(cpu[3]) - int(cpu[4])) / TICK  # all but idle and iowait
    return totals


def cpu_used(before: dict, after: dict, requests: int) -> dict:
    used = {k: after[k] - before[k] for k in after}
    used["other"] = used["machine"] - sum(used[k] for k in ("app", "postgres", "redis", "loadgen"))
    used["app_ms_per_request"] = used["app"] / requests * 1000
    used["postgres_ms_per_request"] = used["postgres"] / requests * 1000
    return used


# --- gunicorn --------------------------------------------------------------------------------------------------


def server_command(args, port: int, target: str) -> list[str]:
    """The server and its settings, the same for the product (wsgi:app) and the yardstick."""
    if args.server == "granian":
        cmd = [str(ROOT / ".venv/bin/granian"), "--interface", "wsgi", "--host", HOST, "--port", str(port),
               "--workers", str(args.workers), "--blocking-threads", str(args.threads or 1), "--backlog", "2048",
               "--no-ws"]
        return [*cmd, target]
    cmd = [str(ROOT / ".venv/bin/gunicorn"), "-w", str(args.workers), "-k", args.worker_class,
           "-b", f"{HOST}:{port}", "--backlog", "2048", "--timeout", "60"]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    return [*cmd, target]


def describe_server(args) -> str:
    if args.server == "granian":
        return f"granian --workers {args.workers} --blocking-threads {args.threads or 1}"
    return f"gunicorn -w {args.workers} -k {args.worker_class}" + (f" --threads {args.threads}" if args.threads else "")


def start_server(args, env: dict, log_path: Path, port: int | None = None, target: str = "wsgi:app"
                 ) -> subprocess.Popen:
    """Start the server (gunicorn or granian, by --server) in its own process group."""
    cmd = server_command(args, port or args.port, target)
    print("$", " ".join(cmd), flush=True)
    log = open(log_path, "wb")  # noqa: SIM115  (the server writes to it until it stops)
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_healthy(proc: subprocess.Popen, port: int, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            if http("GET", f"http://{HOST}:{port}/healthz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not answer /healthz in time")


def stop_server(proc: subprocess.Popen | None) -> None:
    """SIGTERM to the main process (a graceful stop of its workers), SIGKILL to its process group if it hangs."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def start_profiler(proc: subprocess.Popen, out: str) -> list[subprocess.Popen]:
    """py-spy (the dev extras) samples every worker while it holds the GIL — its CPU time, not its waits for
    PostgreSQL or Redis — as collapsed stacks in OUT.txt (for bench/profile_split.py) and a flame graph in
    OUT.svg. --nonblocking: the workers are not paused to be read, so the profile barely slows them."""
    profilers = []
    for fmt, ext in (("raw", "txt"), ("flamegraph", "svg")):
        cmd = [str(ROOT / ".venv/bin/py-spy"), "record", "--subprocesses", "--gil", "--nonblocking",
               "--format", fmt, "--rate", "250", "-p", str(proc.pid), "-o", f"{out}.{ext}",
               *(["--nolineno"] if fmt == "flamegraph" else [])]
        profilers.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(1.0)  # py-spy attaches to each worker
    return profilers


def stop_profiler(profilers: list[subprocess.Popen] | None) -> None:
    for profiler in profilers or ():
        profiler.send_signal(signal.SIGINT)
    for profiler in profilers or ():
        try:
            profiler.wait(timeout=30)
        except subprocess.TimeoutExpired:
            profiler.kill()


# --- the run ---------------------------------------------------------------------------------------------------


def print_figures(name: str, s: dict) -> None:
    print(f"{name:<8} {s['requests']:>5} requests in {s['elapsed_s']:6.2f} s = {s['rps']:7.1f} req/s   "
          f"p50 {s['p50_ms']:6.0f} ms  p95 {s['p95_ms']:6.0f} ms  p99 {s['p99_ms']:6.0f} ms  "
          f"max {s['max_ms']:6.0f} ms")


def print_cpu(name: str, u: dict, elapsed: float) -> None:
    print(f"CPU s, {name}: app {u['app']:.1f}, postgres {u['postgres']:.1f}, redis {u['redis']:.1f}, "
          f"load generator {u['loadgen']:.1f}, other processes {u['other']:.1f} (machine {u['machine']:.1f} of "
          f"{elapsed * (os.cpu_count() or 1):.1f}); per request: app {u['app_ms_per_request']:.1f} ms, "
          f"postgres {u['postgres_ms_per_request']:.1f} ms")


def run(args) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="flash_claim_"))
    url = f"sqlite:///{workdir / 'bench.sqlite'}" if args.db == "sqlite" else (
        f"{args.pg_url}{'&' if '?' in args.pg_url else '?'}application_name={APPLICATION_NAME}")
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": os.urandom(24).hex(), "CREDITS_ENV": "production",
           "REDIS_URL": args.redis_url}
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "SECRET_KEY", "CREDITS_ENV", "REDIS_URL")})
    sys.path.insert(0, str(ROOT))
    from credits import create_app  # after the environment is set: the config reads it on import

    app = create_app()
    t0 = time.monotonic()
    data = prepare(args, app)
    n = len(data["tokens"])
    print(f"prepared {args.db} ({url}) in {time.monotonic() - t0:.1f} s: project {data['project_id']}, "
          f"{n} volunteers with tokens", flush=True)

    args.port = args.port or free_port()
    yardstick_port = free_port() if args.yardstick else None
    log_path = workdir / "gunicorn.log"
    proc = yardstick = profiler = None
    yard = None
    try:
        proc = start_server(args, env, log_path)
        wait_healthy(proc, args.port)
        if args.yardstick:
            yardstick = start_server(args, env, workdir / "yardstick.log", yardstick_port,
                                       f"bench.yardstick:{args.yardstick_app}")
            wait_healthy(yardstick, yardstick_port)
        common = {"port": args.port, "concurrency": args.concurrency, "timeout": args.request_timeout,
                  "keepalive": args.keepalive}

        def phase(spec: dict, limit: float = args.timeout, server: subprocess.Popen | None = None,
                  backends: str = APPLICATION_NAME) -> dict:
            server = server or proc
            pg_pids = app_backends(app, backends)
            before = cpu_snapshot(server.pid, pg_pids)
            result = run_loadgen({**common, **spec}, limit=limit)
            result["cpu"] = cpu_used(before, cpu_snapshot(server.pid, pg_pids | app_backends(app, backends)),
                                     len(spec["requests"]))
            return result

        def publish(project_id: int) -> datetime:
            opens_at = datetime.now(UTC) + timedelta(seconds=args.open_delay)
            status, body, _ = http("POST", f"http://{HOST}:{args.port}/api/v1/projects/{project_id}/publish",
                                   data["coordinator_token"], {"publish_at": opens_at.isoformat()})
            if status != 200 or body.get("status") != "published":
                raise RuntimeError(f"publish answered {status}: {body}")
            print(f"published project {project_id}; claims open at {body['publish_at']}", flush=True)
            return opens_at

        # Warm-up: every worker connects to the database and Redis, and runs each claim outcome at least once.
        phase({"concurrency": 50, "requests": [
            {"method": "POST", "path": f"/api/v1/projects/{data['warmup_project_id']}/claims", "token": t}
            for t in data["warmup_tokens"]] + [{"method": "GET", "path": "/healthz"}] * 200})
        healthz_spec = {"requests": [{"method": "GET", "path": "/healthz"}] * n}
        healthz = [phase(healthz_spec)]

        opens_at = publish(data["project_id"])
        path = f"/api/v1/projects/{data['project_id']}/claims"
        profiler = start_profiler(proc, args.profile) if args.profile else None
        claims = phase({"start_at": opens_at.timestamp(),
                        "requests": [{"method": "POST", "path": path, "token": t} for t in data["tokens"]]},
                       limit=args.timeout + args.open_delay)
        stop_profiler(profiler)
        profiler = None
        # /healthz again after the claims: the ratio compares the claims with both, which evens out a machine
        # whose load changes while the benchmark runs.
        healthz.append(phase(healthz_spec))
        if yardstick:
            # The yardstick: the same claims by the same volunteers on a project of its own, opened the same way,
            # served by the same server with the same settings (bench/yardstick.py), right after the product's.
            phase({"concurrency": 50, "port": yardstick_port, "requests": [
                {"method": "POST", "path": f"/api/v1/projects/{data['warmup_project_id']}/claims", "token": t}
                for t in data["warmup_tokens"]] + [{"method": "GET", "path": "/healthz"}] * 200},
                server=yardstick, backends=YARDSTICK_APPLICATION_NAME)
            yard_opens = publish(data["yardstick_project_id"])
            yard_path = f"/api/v1/projects/{data['yardstick_project_id']}/claims"
            yard = phase({"start_at": yard_opens.timestamp(), "port": yardstick_port,
                          "requests": [{"method": "POST", "path": yard_path, "token": t} for t in data["tokens"]]},
                         limit=args.timeout + args.open_delay, server=yardstick, backends=YARDSTICK_APPLICATION_NAME)
    finally:
        stop_profiler(profiler)
        stop_server(proc)
        stop_server(yardstick)

    c, h = summarise(claims), summarise(*healthz)
    ratio = c["rps"] / h["rps"]
    tl = timeline(claims)
    health_bad = Counter(f"{r['status']} {r['code']}" for run in healthz for r in run["results"]
                         if r["status"] != 200)
    print(f"\n{args.db}, {describe_server(args)}{', keep-alive' if args.keepalive else ''}, {n} requests per "
          f"phase, {args.concurrency} concurrent clients (claims released {claims['late'] * 1000:.1f} ms after "
          "opening)")
    print_figures("claims", c)
    print_figures("healthz", h)
    for i, run_ in enumerate(healthz):
        print_figures(("before", "after")[i], summarise(run_))
    print(f"ratio claims/healthz throughput: {ratio:.2f}")
    print(f"the {args.capacity + args.waitlist} places were settled {tl['places_settled_s']:.2f} s after opening; "
          f"the {tl['refusals_after']} refusals after that came at {tl['refusal_rps']:.0f} req/s")
    print_cpu("claims", claims["cpu"], claims["elapsed"])
    for i, run_ in enumerate(healthz):
        print_cpu(f"healthz {('before', 'after')[i]}", run_["cpu"], run_["elapsed"])
    outcomes, figures, failures = check_claims(app, "claims", claims, data["project_id"], data, args)
    if health_bad:
        failures.append(f"healthz failures: {dict(health_bad)}")
    y = yard_ratio = None
    if yard:
        y = summarise(yard)
        yard_ratio = c["rps"] / y["rps"]
        print_figures("yardstk", y)
        print_cpu("yardstick claims", yard["cpu"], yard["elapsed"])
        print(f"ratio claims/yardstick ({args.yardstick_app}) throughput: {yard_ratio:.2f}   "
              f"(app CPU per claim {claims['cpu']['app_ms_per_request']:.2f} ms vs yardstick "
              f"{yard['cpu']['app_ms_per_request']:.2f} ms)")
        failures += check_claims(app, "yardstick", yard, data["yardstick_project_id"], data, args)[2]
    for name, path in (("gunicorn", log_path), ("yardstick", workdir / "yardstick.log")):
        if path.exists() and "Traceback" in path.read_text(errors="replace"):
            failures.append(f"tracebacks in the {name} log {path}")
    targets = [(ratio >= 0.5, f"ratio {ratio:.2f} < 0.5"), (c["p99_ms"] < 1000, f"claim p99 {c['p99_ms']:.0f} ms")]
    if yard_ratio is not None:
        targets.append((yard_ratio >= 0.6, f"ratio to the yardstick {yard_ratio:.2f} < 0.6"))
    misses = [msg for ok, msg in targets if not ok]

    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps({
            "when": datetime.now(UTC).isoformat(), "db": args.db, "server": describe_server(args),
            "keepalive": args.keepalive, "workers": args.workers, "worker_class": args.worker_class,
            "threads": args.threads, "requests": n, "concurrency": args.concurrency,
            "claims": c, "healthz": h, "healthz_runs": [summarise(r) for r in healthz], "ratio": ratio,
            "yardstick": y, "yardstick_app": args.yardstick_app, "yardstick_ratio": yard_ratio, "timeline": tl,
            "cpu": {"claims": claims["cpu"], "healthz": [r["cpu"] for r in healthz],
                    "yardstick": yard["cpu"] if yard else None},
            "outcomes": dict(outcomes), "database": figures, "failures": failures, "target_misses": misses},
            indent=2))
    for msg in misses:
        print("TARGET MISSED:", msg)
    for msg in failures:
        print("FAILED:", msg)
    print("OK: no oversell, no duplicates, no 5xx" if not failures else f"{len(failures)} assertion(s) failed")
    if not failures and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"kept {workdir} (gunicorn.log{', bench.sqlite' if args.db == 'sqlite' else ''})")
    return 1 if failures or (misses and args.strict) else 0


def check_claims(app, name: str, run_: dict, project_id: int, data: dict, args) -> tuple[Counter, dict, list]:
    """The outcomes answered and what the database holds: exactly the places, the rest refused, no 5xx."""
    results = run_["results"]
    n = len(results)
    outcomes = Counter(outcome(r) for r in results)
    others = Counter(f"{r['status']} {r['code']}" for r in results if outcome(r) == "other")
    print(f"{name} outcomes:", ", ".join(f"{k} {outcomes[k]}"
                                         for k in ("confirmed", "waitlisted", "project_full", "other")))
    if others:
        print(f"{name} other answers:", dict(others.most_common(10)))
    figures, failures = check_database(app, project_id, results, data["volunteer_ids"], args)
    print(f"{name} database:", figures)
    expected_full = n - args.capacity - args.waitlist
    positions = sorted(r["waitlist_position"] for r in results if r["code"] == "waitlisted")
    checks = [
        (outcomes["confirmed"] == args.capacity, f"confirmed {outcomes['confirmed']} != {args.capacity}"),
        (outcomes["waitlisted"] == args.waitlist, f"waitlisted {outcomes['waitlisted']} != {args.waitlist}"),
        (outcomes["project_full"] == expected_full, f"project_full {outcomes['project_full']} != {expected_full}"),
        (not any(r["status"] >= 500 or r["status"] == 0 for r in results), "5xx or failed connections"),
        (positions == list(range(1, args.waitlist + 1)), "waitlist positions answered are not 1..waitlist"),
    ]
    failures = [f"{name}: {msg}" for ok, msg in checks if not ok] + [f"{name}: {msg}" for msg in failures]
    return outcomes, figures, failures


def main() -> None:
    if sys.argv[1:] == ["--loadgen"]:
        loadgen_main()
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--server", choices=("gunicorn", "granian"), default="gunicorn",
                   help="the WSGI server of the app and of the yardstick (default gunicorn)")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--worker-class", default="sync", help="gunicorn -k (default sync)")
    p.add_argument("--threads", type=int, default=0,
                   help="gunicorn --threads (with --worker-class gthread), granian --blocking-threads (default 1: "
                        "granian's own default starts hundreds, each with its database connection)")
    p.add_argument("--keepalive", action="store_true",
                   help="each client sends its requests over one HTTP/1.1 keep-alive connection, opened before the "
                        "claims open (a phone with the page open); default: one connection per request")
    p.add_argument("--yardstick-app", choices=("app", "flask_app"), default="app",
                   help="bench/yardstick.py's bare WSGI function (default) or the same claim as a bare Flask view")
    p.add_argument("--no-yardstick", dest="yardstick", action="store_false",
                   help="skip bench/yardstick.py (it needs PostgreSQL; SQLite runs skip it anyway)")
    p.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    p.add_argument("--pg-url", default=PG_URL, help="dropped and recreated (default: %(default)s)")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="shared rate-limit storage")
    p.add_argument("--volunteers", type=int, default=2000)
    p.add_argument("--capacity", type=int, default=100)
    p.add_argument("--waitlist", type=int, default=100)
    p.add_argument("--concurrency", type=int, default=500)
    p.add_argument("--port", type=int, default=0, help="default: a free port")
    p.add_argument("--open-delay", type=float, default=3.0, help="seconds from publishing to opening")
    p.add_argument("--request-timeout", type=float, default=60.0)
    p.add_argument("--timeout", type=float, default=300.0, help="limit for each load-generator phase")
    p.add_argument("--profile", metavar="OUT", help="py-spy the workers' CPU during the claims: OUT.txt (collapsed "
                   "stacks, for bench/profile_split.py) and OUT.svg (flame graph)")
    p.add_argument("--json-out", help="also write the figures as JSON here (bench/results/ is git-ignored)")
    p.add_argument("--strict", action="store_true", help="also exit non-zero when a performance target is missed")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (log, SQLite file)")
    args = p.parse_args()
    if args.db == "sqlite":
        args.yardstick = False
    if args.volunteers < args.capacity + args.waitlist:
        p.error("--volunteers must be at least --capacity + --waitlist")
    sys.exit(run(args))


if __name__ == "__main__":
    main()
