"""What the scale-out and fault scripts share: the app under gunicorn or granian, Redis and PostgreSQL of their
own, a seeded scratch database, a load generator in its own process, and the checks that the data came through
whole.

Everything here runs on 127.0.0.1 only and cleans up what it started (by process id), also on failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import timedelta
from email.message import Message
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
PASSWORD = "bench-password-2024"
# Debian's server binaries, of the newest PostgreSQL installed (initdb and pg_ctl are not on PATH there).
PG_BIN = max(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), default=Path("/usr/bin"))


# --- processes -------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def http(method: str, url: str, token: str | None = None, body: dict | None = None,
         timeout: float = 10) -> tuple[int, dict, Message | dict]:
    """One request with urllib: (status, JSON body or {}, headers). 0 when the connection failed. The headers are
    urllib's message, whose `get` ignores case: granian sends names in lower case (retry-after), gunicorn as the
    app wrote them."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json",
                                                                         "Accept": "application/json"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, _json(resp.read()), resp.headers
    except urllib.error.HTTPError as exc:
        return exc.code, _json(exc.read()), exc.headers
    except OSError:
        return 0, {}, {}


def _json(raw: bytes) -> dict:
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {"_not_json": raw[:200].decode(errors="replace")}
    return value if isinstance(value, dict) else {}


def wait_until(predicate, limit: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def granian_env(path: Path = ROOT / "deploy/granian.env") -> dict[str, str]:
    """deploy/granian.env as systemd's EnvironmentFile reads it (deploy/credits.service): NAME=value lines, a value
    in matching quotes without them; comments and blank lines skipped."""
    lines = path.read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))
    return {name: value[1:-1] if value[:1] == value[-1:] and value[:1] in "'\"" else value for name, value in pairs}


class AppServer:
    """One app instance on 127.0.0.1:PORT with N workers in its own process group, started with the deploy's
    settings for its server (subclasses: the command and environment); `make_instance` picks the server."""

    server = ""  # the name printed: "gunicorn", "granian"
    # The log line of a worker the server killed for running too long, when the server has such a timeout.
    timeout_line: str | None = None

    def __init__(self, name: str, port: int, workers: int, env: dict, workdir: Path, extra: list[str] = ()):
        self.name, self.port, self.workers, self.workdir = name, port, workers, workdir
        self.env = {**env, **self.settings()}
        self.log_path = workdir / f"{self.server}-{name}.log"
        self.cmd = self.command(list(extra))
        self.proc: subprocess.Popen | None = None

    def settings(self) -> dict:
        return {}

    def command(self, extra: list[str]) -> list[str]:
        raise NotImplementedError

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        print(f"[{self.name}] $ {' '.join(self.cmd)}", flush=True)
        log = open(self.log_path, "ab")  # noqa: SIM115  (the server writes to it until it stops)
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        if not wait_until(self._healthy, 60):
            raise RuntimeError(f"{self.server} {self.name} did not answer /healthz in time; see {self.log_path}")

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.server} {self.name} exited with {self.proc.returncode}; see {self.log_path}")
        return http("GET", f"{self.url}/healthz", timeout=2)[0] == 200

    def worker_pids(self) -> list[int]:
        """The main process's live children, read from /proc: gunicorn's arbiter and granian's main process fork
        the workers, and neither has an API to list them."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[1]) == self.proc.pid and fields[0] != "Z":
                pids.append(int(entry.name))
        return sorted(pids)

    def stop(self) -> None:
        """SIGTERM to the main process (its workers finish what they hold), SIGKILL to the group if it hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def log_tracebacks(self) -> int:
        return self.log_path.read_text(errors="replace").count("Traceback")


class Gunicorn(AppServer):
    """`gunicorn -c deploy/gunicorn.conf.py -w N -b 127.0.0.1:PORT wsgi:app`: the deploy's own settings (preloaded
    app, timeouts, logs), with this run's port and worker count."""

    server = "gunicorn"
    timeout_line = "WORKER TIMEOUT"

    def command(self, extra: list[str]) -> list[str]:
        return [str(ROOT / ".venv/bin/gunicorn"), "-c", str(ROOT / "deploy/gunicorn.conf.py"),
                "-w", str(self.workers), "-b", f"{HOST}:{self.port}", *extra, "wsgi:app"]


class Granian(AppServer):
    """`granian wsgi:app` as deploy/credits.service runs it: deploy/granian.env's GRANIAN_* variables in the
    environment, this run's host, port and worker count on the command line (which overrides them), and a fresh
    metrics directory at each start (the unit's RuntimeDirectory)."""

    server = "granian"

    def settings(self) -> dict:
        return granian_env()

    def command(self, extra: list[str]) -> list[str]:
        return [str(ROOT / ".venv/bin/granian"), "--host", HOST, "--port", str(self.port),
                "--workers", str(self.workers), *extra, "wsgi:app"]

    def start(self) -> None:
        self.env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix=f"metrics-{self.name}-", dir=self.workdir)
        super().start()


SERVERS = {"gunicorn": Gunicorn, "granian": Granian}


def make_instance(server: str, name: str, port: int, workers: int, env: dict, workdir: Path,
                  extra: list[str] = ()) -> AppServer:
    """An app instance served by `server` (a key of SERVERS)."""
    return SERVERS[server](name, port, workers, env, workdir, extra)


class Redis:
    """A redis-server of our own on a spare port, so rate-limit counters start empty and nobody else's move."""

    def __init__(self, workdir: Path):
        self.port, self.workdir = free_port(), workdir
        self.password = os.urandom(12).hex()  # with a password, as docs/deploy.md has it
        self.url = f"redis://:{self.password}@{HOST}:{self.port}/0"
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", HOST, "--save", "", "--appendonly", "no",
             "--requirepass", self.password, "--dir", str(self.workdir)], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        if not wait_until(lambda: _redis_ping(self.port, self.password), 10, 0.1):
            raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def keys(self, pattern: str) -> list[str]:
        from redis import Redis as Client

        with Client.from_url(self.url, decode_responses=True) as client:
            return list(client.scan_iter(pattern))


def _redis_ping(port: int, password: str) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1) as s:
            s.sendall(f"AUTH {password}\r\nPING\r\n".encode())
            time.sleep(0.05)
            return b"+PONG" in s.recv(64)
    except OSError:
        return False


class Postgres:
    """A throwaway PostgreSQL cluster (initdb into a temporary folder, trust auth, a spare port), run as the
    postgres user, so that stopping it harms nobody else's tests."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.dir = workdir / "pg"
        self.socket_dir = Path(tempfile.mkdtemp(prefix="pgsock_"))
        self.dir.mkdir()
        for path in (workdir, self.dir, self.socket_dir):
            shutil.chown(path, "postgres", "postgres")
        self._as_postgres([str(PG_BIN / "initdb"), "-D", str(self.dir), "-A", "trust", "-U", "postgres",
                           "--no-sync", "-E", "UTF8", "--locale", "C"])
        self.log = self.dir / "server.log"
        self.start()
        self.url = f"postgresql+psycopg://postgres@{HOST}:{self.port}/postgres"

    def _as_postgres(self, cmd: list[str]) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(prefix + cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.socket_dir} -c listen_addresses={HOST} -c fsync=off -c max_connections=60"
        self._as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.dir), "-l", str(self.log), "-o", options,
                           "-w", "start"])

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.dir), "-m", mode, "-w", "stop"])

    def running(self) -> bool:
        return (self.dir / "postmaster.pid").exists()

    def database(self, name: str) -> str:
        """A new empty database on this cluster, and its URL."""
        url = f"postgresql+psycopg://postgres@{HOST}:{self.port}/{name}"
        ensure_pg_database(url)
        return url

    def destroy(self) -> None:
        if self.running():
            self.stop("immediate")
        shutil.rmtree(self.socket_dir, ignore_errors=True)


# --- the app in this process (seeding and checking) --------------------------------------------------------------


def make_app(env: dict):
    """The app as gunicorn will build it, for seeding and checking from this process. The configuration classes
    read the environment once, at import, so a second app in this process gets its database as overrides."""
    os.environ.update({k: v for k, v in env.items() if k in ("DATABASE_URL", "SECRET_KEY", "CREDITS_ENV",
                                                            "REDIS_URL", "TRUSTED_PROXY_COUNT")})
    sys.path.insert(0, str(ROOT))
    from credits import create_app

    return create_app(overrides={"SQLALCHEMY_DATABASE_URI": env["DATABASE_URL"], "REDIS_URL": env["REDIS_URL"],
                                 "SECRET_KEY": env["SECRET_KEY"]})


def base_env(database_url: str, redis_url: str) -> dict:
    return {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "CREDITS_ENV": "production",
            "SECRET_KEY": os.urandom(24).hex(), "PYTHONUNBUFFERED": "1"}


def ensure_pg_database(url: str) -> None:
    """Create the database of a postgresql+psycopg URL on its server if it is missing."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    target = make_url(url)
    engine = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if not conn.exec_driver_sql("SELECT 1 FROM pg_database WHERE datname = %s", (target.database,)).scalar():
            conn.exec_driver_sql(f'CREATE DATABASE "{target.database}"')
    engine.dispose()


def seed(app, *, volunteers: int, projects: list[dict], coins: int = 0, services: list[dict] = (),
         staff: int = 0) -> dict:
    """A fresh schema; a coordinator; the projects, published and open now (unless a spec says "draft");
    volunteers with API tokens (bulk: one password hash for all) and `coins` each (an ADJUST from issuance, as an
    admin's grant); one merchant with the services and `staff` staff users with tokens."""
    from flask_migrate import upgrade
    from sqlalchemy import insert, update

    from credits.auth import services as auth
    from credits.auth.models import ApiToken, Organization, Role, User, UserRole
    from credits.auth.passwords import hash_password
    from credits.extensions import db
    from credits.ledger.models import SystemAccount, TxKind
    from credits.ledger.services import system_account, transfer, user_account
    from credits.merchants import services as merchants
    from credits.projects import services as project_services
    from credits.timeutil import utcnow

    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as conn:
                conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        upgrade()
        now = utcnow()
        org = Organization(name="奉城镇压测志愿服务队", kind="social")
        db.session.add(org)
        db.session.flush()
        coordinator = auth.create_user(phone="13800000000", name="压测协调员", password=PASSWORD,
                                       roles=[Role.COORDINATOR], organization_id=org.id)
        coordinator_token, _ = auth.issue_token(coordinator)
        starts = now + timedelta(days=7)
        project_ids = []
        for spec in projects:
            spec = dict(spec)
            draft = spec.pop("draft", False)  # left for the caller to publish, e.g. to open at a set moment
            project = project_services.create_project(
                {"category": "社区服务", "location": "奉城镇文化广场", "starts_at": starts,
                 "ends_at": starts + timedelta(hours=3), **spec}, actor=coordinator)
            if not draft:
                project_services.publish(project, actor=coordinator)
            project_ids.append(project.id)

        password_hash = hash_password(PASSWORD)
        ids = db.session.scalars(insert(User).returning(User.id, sort_by_parameter_order=True), [
            {"phone": f"139{i:08d}", "name": f"志愿者{i}", "password_hash": password_hash,
             "created_at": now, "password_changed_at": now} for i in range(volunteers)]).all()
        db.session.execute(insert(UserRole), [{"user_id": uid, "role": Role.VOLUNTEER.value} for uid in ids])
        tokens = [f"bench-{uid}-{os.urandom(16).hex()}" for uid in ids]
        db.session.execute(insert(ApiToken), [
            {"user_id": uid, "token_hash": auth.token_hash(raw), "created_at": now,
             "expires_at": now + auth.TOKEN_LIFETIME} for uid, raw in zip(ids, tokens, strict=True)])
        db.session.execute(update(User), [{"id": uid, "volunteer_no": f"FC{uid:07d}"} for uid in ids])
        if coins:
            issuance = system_account(SystemAccount.ISSUANCE)
            for uid in ids:
                transfer(TxKind.ADJUST, issuance, user_account(uid), coins, actor=coordinator, memo="压测：初始公益币")

        service_ids, staff_tokens = [], []
        if services or staff:
            shop = merchants.create_merchant({"name": "奉城老街压测洗车行", "address": "奉城老街 1 号",
                                              "category": "car_wash"}, actor=coordinator)
            for spec in services:
                service_ids.append(merchants.create_service(shop, spec, actor=coordinator).id)
            for i in range(staff):
                user = merchants.add_staff(shop, {"phone": f"137{i:08d}", "name": f"店员{i}",
                                                  "password": PASSWORD}, actor=coordinator)
                staff_tokens.append(auth.issue_token(user)[0])
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return {"coordinator_token": coordinator_token, "project_ids": project_ids, "volunteer_ids": list(ids),
            "tokens": tokens, "service_ids": service_ids, "staff_tokens": staff_tokens}


def verify_ledger(app) -> list[str]:
    from credits.extensions import db
    from credits.ledger.verify import verify_ledger as verify

    with app.app_context():
        breaches = [str(b) for b in verify()]
        db.session.remove()
        db.engine.dispose()
    return breaches


def consistency(app) -> tuple[dict, list[str]]:
    """Nothing half-made: project counters equal their live claim rows, every waitlist numbered without a gap,
    escrow equals the coins of issued vouchers, each redeemed voucher has exactly one REDEEM transaction and each
    voucher exactly one HOLD, and every voucher's quota place is counted."""
    from sqlalchemy import func, select

    from credits.extensions import db
    from credits.ledger.models import Account, SystemAccount, Transaction, TxKind
    from credits.merchants.models import ServiceDay, Voucher, VoucherStatus
    from credits.projects.models import Claim, Project

    failures: list[str] = []
    figures: dict = {}
    with app.app_context():
        s = db.session
        for project in s.scalars(select(Project)):
            rows = Counter(s.scalars(select(Claim.status).where(Claim.project_id == project.id)))
            figures[f"project {project.id}"] = {"capacity": project.capacity, "confirmed": rows["confirmed"],
                                                "waitlisted": rows["waitlisted"]}
            if (project.confirmed_count, project.waitlist_count) != (rows["confirmed"], rows["waitlisted"]):
                failures.append(f"project {project.id}: counters {project.confirmed_count}/{project.waitlist_count}"
                                f" but rows {rows['confirmed']}/{rows['waitlisted']}")
            if project.confirmed_count > project.capacity or project.waitlist_count > project.waitlist_capacity:
                failures.append(f"project {project.id} oversold")
        vouchers = Counter(s.scalars(select(Voucher.status)))
        figures["vouchers"] = dict(vouchers)
        escrow = s.scalar(select(Account.balance).where(Account.system_code == SystemAccount.ESCROW.value)) or 0
        outstanding = s.scalar(select(func.coalesce(func.sum(Voucher.coins), 0))
                               .where(Voucher.status == VoucherStatus.ISSUED.value))
        figures["escrow"] = escrow
        if escrow != outstanding:
            failures.append(f"escrow {escrow} != coins of issued vouchers {outstanding}")
        tx_count = (select(func.count()).select_from(Transaction)
                    .where(Transaction.ref_type == "voucher", Transaction.ref_id == Voucher.id))
        redeem_txs = tx_count.where(Transaction.kind == TxKind.REDEEM.value).scalar_subquery()
        hold_txs = tx_count.where(Transaction.kind == TxKind.HOLD.value).scalar_subquery()
        bad_redeemed = s.scalar(select(func.count()).select_from(Voucher).where(
            (Voucher.status == VoucherStatus.REDEEMED.value) != (redeem_txs == 1)))
        if bad_redeemed:
            failures.append(f"{bad_redeemed} vouchers whose status and REDEEM transactions disagree")
        bad_held = s.scalar(select(func.count()).select_from(Voucher).where(hold_txs != 1))
        if bad_held:
            failures.append(f"{bad_held} vouchers without exactly one HOLD transaction")
        live = (select(Voucher.service_id, Voucher.day, func.count().label("n"))
                .where(Voucher.status.in_((VoucherStatus.ISSUED.value, VoucherStatus.REDEEMED.value)))
                .group_by(Voucher.service_id, Voucher.day).subquery())
        quota_rows = s.execute(select(ServiceDay.service_id, ServiceDay.taken, live.c.n).join(
            live, (live.c.service_id == ServiceDay.service_id) & (live.c.day == ServiceDay.day))).all()
        for service_id, taken, n in quota_rows:
            if taken != n:
                failures.append(f"service {service_id}: quota counter {taken} but {n} live vouchers")
        s.remove()
        db.engine.dispose()
    return figures, failures


def answered_in_database(app, results: list[dict], kinds: dict[str, tuple]) -> list[str]:
    """Every 2xx answer names an object the database holds in the state answered (or a later one: a voucher
    answered `issued` may have been redeemed since). `kinds` maps a result's `kind` to (model, allowed states)."""
    from sqlalchemy import select

    from credits.extensions import db
    from credits.merchants.models import Voucher
    from credits.projects.models import Claim

    models = {"claim": Claim, "voucher": Voucher}
    failures = []
    with app.app_context():
        for kind, (model_name, later) in kinds.items():
            model = models[model_name]
            answered = {r["id"]: r for r in results if r.get("kind") == kind and 200 <= r["status"] < 300}
            if not answered:
                continue
            stored = dict(db.session.execute(select(model.id, model.status).where(model.id.in_(answered))).all())
            missing = [i for i in answered if i not in stored]
            if missing:
                failures.append(f"{len(missing)} {kind} answers with 2xx are not in the database: {missing[:5]}")
            wrong = [(i, r["state"], stored[i]) for i, r in answered.items()
                     if i in stored and stored[i] != r["state"] and stored[i] not in later]
            if wrong:
                failures.append(f"{len(wrong)} {kind} answers differ from the database: {wrong[:5]}")
        db.session.remove()
        db.engine.dispose()
    return failures


# --- load generator (runs in its own process: `python bench/harness.py --loadgen`) -----------------------------


def request_bytes(r: dict) -> bytes:
    body = json.dumps(r["body"]).encode() if r.get("body") is not None else b""
    lines = [f"{r['method']} {r['path']} HTTP/1.1", f"Host: {HOST}", "Connection: close",
             "Accept: application/json", "User-Agent: credits-bench"]
    if r.get("token"):
        lines.append(f"Authorization: Bearer {r['token']}")
    for name, value in (r.get("headers") or {}).items():
        lines.append(f"{name}: {value}")
    if r["method"] != "GET":
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Truncated(ValueError):
    """The connection closed before the whole response came: the worker died while sending it."""


def parse_response(raw: bytes) -> tuple[int, dict]:
    head, end, body = raw.partition(b"\r\n\r\n")
    if not end:
        raise Truncated()
    status = int(head.split(b" ", 2)[1])
    for line in head.lower().split(b"\r\n")[1:]:
        if line.startswith(b"content-length:") and len(body) < int(line.split(b":", 1)[1]):
            raise Truncated()
    if b"transfer-encoding: chunked" in head.lower():
        decoded, rest = b"", body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            decoded, rest = decoded + rest[:size], rest[size + 2:]
        body = decoded
    return status, _json(body)


def _tls_context() -> ssl.SSLContext:
    """nginx's certificate in a run is self-signed for 127.0.0.1: encrypt, but trust it."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def _send(port: int, payload: bytes, timeout: float, tls: ssl.SSLContext | None) -> tuple[int, dict, str | None]:
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(HOST, port, ssl=tls)
            writer.write(payload)
            await writer.drain()
            raw = await reader.read()
        if not raw:
            return 0, {}, "EmptyResponse"
        status, body = parse_response(raw)
        return status, body, None
    except (OSError, TimeoutError, ValueError, IndexError) as exc:
        return 0, {}, type(exc).__name__
    finally:
        if writer is not None:
            writer.close()


async def _fire(spec: dict) -> dict:
    """Send the requests with `concurrency` clients; a client waits `spacing` seconds between its requests (a
    steady stream rather than a burst) and takes no new one after `until` (epoch seconds). A request whose
    connection failed (a killed worker) is sent again, the same bytes (so the same Idempotency-Key), up to
    `retries` more times."""
    timeout, spacing, retries = spec["timeout"], spec.get("spacing", 0.0), spec.get("retries", 0)
    requests = spec["requests"]
    results: list = [None] * len(requests)
    queue = iter(range(len(requests)))
    t_start = time.time()
    tls = _tls_context()

    async def client() -> None:
        for i in queue:
            if spec.get("until") and time.time() > spec["until"]:
                break
            r = requests[i]
            payload = request_bytes(r)
            attempts, sent_at = [], time.time()
            for _ in range(retries + 1):
                t0 = time.time()
                status, body, error = await _send(r["port"], payload, timeout, tls if r.get("tls") else None)
                attempts.append({"status": status, "error": error, "t0": t0, "t1": time.time()})
                if status != 0:
                    break
                await asyncio.sleep(0.05)
            err = body.get("error") if isinstance(body.get("error"), dict) else {}
            results[i] = {**{k: r[k] for k in ("kind", "port", "tag") if k in r}, "status": status,
                          "code": err.get("code"), "json_error": bool(err.get("code") and err.get("message")),
                          "not_json": "_not_json" in body, "id": body.get("id"), "state": body.get("status"),
                          "voucher_code": body.get("code"), "waitlist_position": body.get("waitlist_position"),
                          "body": None if err.get("code") or status < 400 else body,
                          "error": error, "attempts": len(attempts), "failed_attempts": attempts[:-1],
                          "sent_at": sent_at, "t0": attempts[-1]["t0"], "t1": attempts[-1]["t1"],
                          "latency": attempts[-1]["t1"] - attempts[-1]["t0"]}
            if spacing:
                await asyncio.sleep(spacing * random.uniform(0.5, 1.5))

    if spec.get("start_at"):
        await asyncio.sleep(max(0.0, spec["start_at"] - time.time()))
        t_start = time.time()
    await asyncio.gather(*(client() for _ in range(spec["concurrency"])))
    return {"started": t_start, "elapsed": time.time() - t_start, "results": results}


class Load:
    """A load generator process; `wait()` returns its results."""

    def __init__(self, requests: list[dict], *, concurrency: int, timeout: float = 60, spacing: float = 0.0,
                 retries: int = 0, start_at: float | None = None, until: float | None = None):
        spec = {"requests": requests, "concurrency": concurrency, "timeout": timeout, "spacing": spacing,
                "retries": retries, "start_at": start_at, "until": until}
        self.proc = subprocess.Popen([sys.executable, __file__, "--loadgen"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.proc.stdin.write(json.dumps(spec))
        self.proc.stdin.close()

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait(self, limit: float = 600) -> dict:
        out = self.proc.stdout.read()
        self.proc.wait(timeout=limit)
        if self.proc.returncode != 0:
            raise RuntimeError(f"load generator failed ({self.proc.returncode}):\n{self.proc.stderr.read()[-3000:]}")
        run = json.loads(out)
        run["results"] = [r for r in run["results"] if r is not None]  # those left when `until` came
        return run


# --- figures and the report --------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    return values[max(1, min(len(values), round(q / 100 * len(values) + 0.5))) - 1]


def by_status(results: list[dict]) -> str:
    counts = Counter(f"{r['status']} {r['code'] or r['state'] or r['error'] or ''}".strip() for r in results)
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))


class Report:
    """Checks with their outcome, printed as they are made; `exit_code()` is 1 when any failed."""

    def __init__(self, title: str):
        self.title, self.failed, self.passed = title, [], []
        print(f"\n=== {title}", flush=True)

    def check(self, ok: bool, what: str, detail: str = "") -> bool:
        (self.passed if ok else self.failed).append(what)
        print(f"  {'PASS' if ok else 'FAIL'}  {what}{f' ({detail})' if detail else ''}", flush=True)
        return ok

    def note(self, text: str) -> None:
        print(f"  {text}", flush=True)

    def summary(self) -> str:
        return f"{self.title}: {len(self.passed)} passed, {len(self.failed)} failed"


def finish(reports: list[Report]) -> int:
    print()
    for report in reports:
        print(report.summary())
        for what in report.failed:
            print(f"  FAILED: {what}")
    passed, failed = sum(len(r.passed) for r in reports), sum(len(r.failed) for r in reports)
    print(f"checks: {passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--loadgen"]:
        json.dump(asyncio.run(_fire(json.load(sys.stdin))), sys.stdout)
