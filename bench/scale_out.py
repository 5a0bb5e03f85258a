"""Scale-out proof: two app instances sharing one PostgreSQL and one Redis behave as one.

Starts two gunicorn instances (`-c deploy/gunicorn.conf.py`, 2 workers each, CREDITS_ENV=production) on two
ports against one fresh PostgreSQL database and one Redis of its own, and checks:

1. a flash claim split across both instances sells exactly the places there are — counters equal rows, every 201
   is the row stored, both instances handed out places, verify-ledger clean;
2. the sign-in throttle reached on instance A holds on instance B (429), per phone and per address;
3. with nginx installed: deploy/nginx.conf, with these instances as its upstream and a self-signed certificate, takes
   a second flash claim over HTTPS with the same results, and keeps answering when instance B is stopped.

    .venv/bin/python bench/scale_out.py            # 1,200 volunteers for 100 + 100 places, 200 clients
    .venv/bin/python bench/scale_out.py --quick    # CI: 300 volunteers for 30 + 30 places, 60 clients

It prints what happened and exits 1 when a check fails. Only for 127.0.0.1: it drops and recreates the schema of
the database it is given (default credits_scaleout on the local server, created if missing).
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from harness import (
    HOST,
    PASSWORD,
    ROOT,
    Gunicorn,
    Load,
    Redis,
    Report,
    answered_in_database,
    base_env,
    by_status,
    consistency,
    ensure_pg_database,
    finish,
    free_port,
    make_app,
    percentile,
    seed,
    verify_ledger,
)

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/credits_scaleout"
CLAIM_STATES = ("confirmed", "waitlisted")


def claim_requests(project_id: int, tokens: list[str], ports: list[int], tls: bool = False) -> list[dict]:
    """One claim per volunteer, dealt to the ports in turn."""
    return [{"kind": "claim", "method": "POST", "path": f"/api/v1/projects/{project_id}/claims", "token": t,
             "port": ports[i % len(ports)], "tls": tls} for i, t in enumerate(tokens)]


def check_flash_claim(report: Report, app, results: list[dict], elapsed: float, args) -> None:
    outcomes = Counter(r["state"] if r["status"] == 201 else f"{r['status']} {r['code'] or r['error']}"
                       for r in results)
    latencies = [r["latency"] for r in results]
    report.note(f"{len(results)} claims in {elapsed:.2f} s = {len(results) / elapsed:.0f} req/s, "
                f"p50 {percentile(latencies, 50) * 1000:.0f} ms, p95 {percentile(latencies, 95) * 1000:.0f} ms")
    report.note(f"answers: {by_status(results)}")
    per_port = Counter((r["port"], r["state"]) for r in results if r["status"] == 201)
    for port in sorted({r["port"] for r in results}):
        report.note(f"port {port}: {per_port[(port, 'confirmed')]} confirmed, "
                    f"{per_port[(port, 'waitlisted')]} waitlisted")
    full = len(results) - args.capacity - args.waitlist
    report.check(outcomes["confirmed"] == args.capacity, f"confirmed answers == capacity {args.capacity}",
                 f"{outcomes['confirmed']}")
    report.check(outcomes["waitlisted"] == args.waitlist, f"waitlisted answers == waitlist {args.waitlist}",
                 f"{outcomes['waitlisted']}")
    report.check(outcomes["409 project_full"] == full, f"the other {full} answered 409 project_full",
                 f"{outcomes['409 project_full']}")
    report.check(not any(r["status"] >= 500 or r["status"] == 0 for r in results), "no 5xx, no failed connection")
    positions = sorted(r["waitlist_position"] for r in results if r["state"] == "waitlisted")
    report.check(positions == list(range(1, args.waitlist + 1)), "waitlist positions answered are 1..waitlist")
    ports = {r["port"] for r in results}
    if len(ports) > 1:
        report.check(all(per_port[(p, "confirmed")] + per_port[(p, "waitlisted")] > 0 for p in ports),
                     "both instances handed out places")


def check_database(report: Report, app, results: list[dict], project_id: int, args) -> None:
    figures, failures = consistency(app)
    project = figures[f"project {project_id}"]
    report.note(f"database: {project}")
    report.check(project["confirmed"] == args.capacity and project["waitlisted"] == args.waitlist,
                 "claim rows == places: no oversell", f"{project}")
    report.check(not failures, "counters equal rows (every project)", "; ".join(failures))
    missing = answered_in_database(app, results, {"claim": ("claim", ())})
    report.check(not missing, "every 201 is the claim row stored, in the state answered", "; ".join(missing))
    breaches = verify_ledger(app)
    report.check(not breaches, "verify-ledger clean", "; ".join(breaches[:5]))


def connections(app) -> dict:
    """Connections to the database from others than this process, by state: what the instances keep open."""
    from sqlalchemy import text

    from credits.extensions import db

    with app.app_context():
        rows = db.session.execute(text(
            "SELECT coalesce(state, '?'), count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() GROUP BY 1")).all()
        db.session.remove()
        db.engine.dispose()
    return dict(rows)


def throttle(report: Report, a: Gunicorn, b: Gunicorn) -> None:
    """Five failures on A, the sixth attempt on B. The instances trust X-Forwarded-For (TRUSTED_PROXY_COUNT=1, as
    behind nginx), which lets this one client stand for many addresses and so test each key on its own."""

    def sign_in(instance: Gunicorn, phone: str, password: str, address: str) -> tuple[int, dict, dict]:
        import json
        import urllib.error
        import urllib.request

        req = urllib.request.Request(f"{instance.url}/api/v1/auth/token", method="POST",
                                     data=json.dumps({"phone": phone, "password": password}).encode(),
                                     headers={"Content-Type": "application/json", "X-Forwarded-For": address})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read()), dict(resp.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}"), dict(exc.headers)

    phone = "13900000001"  # a seeded volunteer
    failures = [sign_in(a, phone, "wrong-password", f"198.51.100.{i}")[0] for i in range(5)]
    report.note(f"per phone: 5 wrong passwords for {phone} on A from 5 addresses: {failures}")
    status, body, headers = sign_in(b, phone, PASSWORD, "198.51.100.50")
    report.note(f"the right password on B from a 6th address: {status} {body.get('error', {}).get('code')}, "
                f"Retry-After {headers.get('Retry-After')}")
    report.check(failures == [401] * 5 and status == 429 and body["error"]["code"] == "rate_limited",
                 "per-phone throttle reached on A holds on B (429 rate_limited)")
    report.check(headers.get("Retry-After", "").isdigit(), "the 429 says when to retry (Retry-After)")

    address = "203.0.113.9"
    failures = [sign_in(a, f"1390000{i:04d}", "wrong-password", address)[0] for i in range(100, 105)]
    status, body, _ = sign_in(b, "13900000200", PASSWORD, address)
    other, _, _ = sign_in(b, "13900000201", PASSWORD, "203.0.113.10")
    report.note(f"per address: 5 wrong passwords from {address} on A for 5 phones: {failures}; "
                f"a 6th phone from that address on B: {status}; from another address on B: {other}")
    report.check(failures == [401] * 5 and status == 429, "per-address throttle reached on A holds on B")
    report.check(other == 201, "another address is not throttled (signs in on B: 201)")


def nginx_config(workdir: Path, a: Gunicorn, b: Gunicorn) -> tuple[Path, int, int]:
    """deploy/nginx.conf with this run's upstreams, ports and certificate, inside a main config of its own."""
    http_port, https_port = free_port(), free_port()
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    f"/CN={HOST}", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    text = (ROOT / "deploy/nginx.conf").read_text()
    for pattern, replacement in [
        (r"server app1\.internal:8000", f"server {HOST}:{a.port}"),
        (r"server app2\.internal:8000", f"server {HOST}:{b.port}"),
        (r"listen 80;", f"listen {HOST}:{http_port};"),
        (r"listen 443 ssl http2;", f"listen {HOST}:{https_port} ssl http2;"),
        (r"/etc/ssl/credits/fullchain\.pem", str(cert)),
        (r"/etc/ssl/credits/privkey\.pem", str(key)),
    ]:
        text, n = re.subn(pattern, replacement, text)
        if n != 1:
            raise RuntimeError(f"deploy/nginx.conf changed: {pattern!r} found {n} times")
    (workdir / "credits.conf").write_text(text)
    temp = workdir / "nginx-temp"
    temp.mkdir()
    main = workdir / "nginx.conf"
    main.write_text("\n".join([
        "user root;" if os.geteuid() == 0 else "",
        "worker_processes 1;", f"pid {workdir}/nginx.pid;", f"error_log {workdir}/nginx-error.log;",
        "events { worker_connections 2048; }",
        "http {", "  log_format upstream '$request_method $uri $status $upstream_addr';",
        f"  access_log {workdir}/nginx-access.log upstream;",
        *[f"  {kind}_temp_path {temp}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")],
        f"  include {workdir}/credits.conf;", "}", ""]))
    return main, http_port, https_port


def through_nginx(report: Report, app, data: dict, a: Gunicorn, b: Gunicorn, workdir: Path, args) -> None:
    main, http_port, https_port = nginx_config(workdir, a, b)
    subprocess.run(["nginx", "-t", "-c", str(main)], check=True, capture_output=True)
    proc = subprocess.Popen(["nginx", "-c", str(main), "-g", "daemon off;"], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        base = f"https://{HOST}:{https_port}"
        print(f"$ nginx -c {main}  (deploy/nginx.conf on {base})", flush=True)
        conn = http.client.HTTPConnection(HOST, http_port, timeout=10)
        conn.request("GET", "/healthz", headers={"Host": HOST})
        response = conn.getresponse()
        redirect = f"{response.status} {response.getheader('Location')}"
        conn.close()
        report.check(redirect.startswith("301 https://"), "plain HTTP is redirected to HTTPS", redirect)
        status, body, _ = http_tls("GET", f"{base}/healthz")
        report.check(status == 200 and body.get("status") == "ok", "GET /healthz through nginx", f"{status}")

        project = data["project_ids"][1]
        load = Load(claim_requests(project, data["tokens"], [https_port], tls=True), concurrency=args.concurrency,
                    start_at=time.time() + 1.0)
        run = load.wait()
        check_flash_claim(report, app, run["results"], run["elapsed"], args)
        check_database(report, app, run["results"], project, args)
        log = (workdir / "nginx-access.log").read_text()
        upstreams = Counter(re.findall(r"^POST \S+ (\d+) (\S+)$", log, re.MULTILINE))
        report.note(f"nginx sent the claims to: {dict(sorted(upstreams.items()))}")
        report.check(all(any(u == f"{HOST}:{i.port}" for _, u in upstreams) for i in (a, b)),
                     "nginx shared the claims between both instances")

        # Scaling out or in is an upstream line and a reload: nginx must keep answering through it.
        subprocess.run(["nginx", "-c", str(main), "-s", "reload"], check=True, capture_output=True)
        time.sleep(0.5)
        status, _, _ = http_tls("GET", f"{base}/healthz")
        report.check(status == 200, "nginx -s reload: still answering", f"{status}")
        b.stop()
        statuses = Counter(http_tls("GET", f"{base}/api/v1/projects/{project}")[0] for _ in range(40))
        report.check(statuses == Counter({200: 40}), "with instance B stopped, nginx sends everything to A",
                     f"{dict(statuses)}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def http_tls(method: str, url: str) -> tuple[int, dict, dict]:
    import json
    import ssl
    import urllib.error
    import urllib.request

    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10,
                                    context=context) as resp:
            return resp.status, json.loads(resp.read() or b"{}"), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, {}, {}
    except OSError:
        return 0, {}, {}


def run(args) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="scale_out_"))
    redis = Redis(workdir)
    ensure_pg_database(args.pg_url)
    env = {**base_env(args.pg_url, redis.url), "TRUSTED_PROXY_COUNT": "1"}
    app = make_app(env)
    t0 = time.monotonic()
    places = {"capacity": args.capacity, "waitlist_capacity": args.waitlist}
    data = seed(app, volunteers=args.volunteers, projects=[{"title": "双实例秒抢", **places},
                                                           {"title": "经 nginx 秒抢", **places}])
    print(f"seeded {args.volunteers} volunteers with tokens and 2 projects of {args.capacity} + {args.waitlist} "
          f"places in {time.monotonic() - t0:.1f} s; Redis on port {redis.port}", flush=True)
    a = Gunicorn("A", free_port(), args.workers, env, workdir)
    b = Gunicorn("B", free_port(), args.workers, env, workdir)
    reports = []
    try:
        a.start()
        b.start()
        report = Report(f"flash claim split across two instances (ports {a.port}, {b.port}), "
                        f"{args.volunteers} volunteers, {args.concurrency} clients")
        reports.append(report)
        load = Load(claim_requests(data["project_ids"][0], data["tokens"], [a.port, b.port]),
                    concurrency=args.concurrency, start_at=time.time() + 1.0)
        run_ = load.wait()
        check_flash_claim(report, app, run_["results"], run_["elapsed"], args)
        report.note(f"PostgreSQL connections held by the two instances after the claims: {connections(app)}")
        check_database(report, app, run_["results"], data["project_ids"][0], args)

        report = Report("sign-in throttle shared through Redis")
        reports.append(report)
        throttle(report, a, b)

        if args.nginx and shutil.which("nginx"):
            report = Report("the same through nginx (deploy/nginx.conf, HTTPS)")
            reports.append(report)
            through_nginx(report, app, data, a, b, workdir, args)
        elif args.nginx:
            print("\nnginx is not installed: the nginx part is skipped (apt-get install nginx)")
        for instance in (a, b):
            if instance.log_path.exists() and instance.log_tracebacks():
                reports[0].check(False, f"no traceback in {instance.log_path}")
    finally:
        a.stop()
        b.stop()
        redis.stop()
    code = finish(reports)
    if code == 0 and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"kept {workdir} (gunicorn and nginx logs)")
    return code


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a small load for CI")
    p.add_argument("--pg-url", default=PG_URL, help="dropped and recreated (default: %(default)s)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers per instance")
    p.add_argument("--volunteers", type=int)
    p.add_argument("--capacity", type=int)
    p.add_argument("--waitlist", type=int)
    p.add_argument("--concurrency", type=int)
    p.add_argument("--no-nginx", dest="nginx", action="store_false", help="skip the part through nginx")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory with the logs")
    args = p.parse_args()
    small, full = (300, 30, 30, 60), (1200, 100, 100, 200)
    for name, value in zip(("volunteers", "capacity", "waitlist", "concurrency"), small if args.quick else full,
                           strict=True):
        if getattr(args, name) is None:
            setattr(args, name, value)
    sys.exit(run(args))


if __name__ == "__main__":
    main()
