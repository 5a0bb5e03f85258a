"""Scale-out proof: two app instances sharing one PostgreSQL and one Redis behave as one.

Starts two app instances (gunicorn with `-c deploy/gunicorn.conf.py`, or with --server granian granian with
deploy/granian.env's settings; 2 workers each, CREDITS_ENV=production) on two ports against one fresh PostgreSQL
database and one Redis of its own, and checks:

1. a flash claim split across both instances sells exactly the places there are — counters equal rows, every 201
   is the row stored, both instances handed out places, verify-ledger clean;
2. the sign-in throttle reached on instance A holds on instance B (429), per phone (20 wrong passwords from 20
   addresses) and per address (5);
3. with nginx installed: deploy/nginx.conf, with these instances as its upstream and a self-signed certificate, takes
   a second flash claim over HTTPS with the same results; a client forging X-Forwarded-For through it is still
   counted by the address nginx saw (the sixth sign-in of that address gets 429); a rolling restart of B under a
   stream of claims — SIGTERM alone (measured: the claims queued at B get 502 from nginx, and none of them ran),
   then with B first taken out of the upstream (must lose nothing); and it keeps answering when B is stopped.

    .venv/bin/python bench/scale_out.py            # 1,200 volunteers for 100 + 100 places, 200 clients
    .venv/bin/python bench/scale_out.py --quick    # CI: 300 volunteers for 30 + 30 places, 60 clients
    .venv/bin/python bench/scale_out.py --server granian

It prints what happened and exits 1 when a check fails. Only for 127.0.0.1: it drops and recreates the schema of
the database it is given (default credits_scaleout on the local server, created if missing).
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from email.message import Message
from pathlib import Path

from harness import (
    HOST,
    PASSWORD,
    ROOT,
    SERVERS,
    AppServer,
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
    make_instance,
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


def sign_in(base: str, phone: str, password: str, forwarded_for: str) -> tuple[int, dict, Message | dict]:
    """POST /api/v1/auth/token on an instance or through nginx, with an X-Forwarded-For of the caller's choosing."""
    return http_tls("POST", f"{base}/api/v1/auth/token", body={"phone": phone, "password": password},
                    headers={"X-Forwarded-For": forwarded_for})


def throttle(report: Report, a: AppServer, b: AppServer) -> None:
    """Five failures on A, the sixth attempt on B. The instances trust X-Forwarded-For (TRUSTED_PROXY_COUNT=1, as
    behind nginx), which lets this one client stand for many addresses and so test each key on its own."""

    phone = "13900000001"  # a seeded volunteer
    strangers = [sign_in(a.url, phone, "wrong-password", f"198.51.100.{i}")[0] for i in range(20)]
    report.note(f"per phone: 20 wrong passwords for {phone} on A from 20 addresses: {Counter(strangers)}")
    status, body, headers = sign_in(b.url, phone, PASSWORD, "198.51.100.50")
    report.note(f"the right password on B from a 21st address: {status} {body.get('error', {}).get('code')}, "
                f"Retry-After {headers.get('Retry-After')}")
    report.check(strangers == [401] * 20 and status == 429 and body["error"]["code"] == "rate_limited",
                 "per-phone throttle reached on A holds on B (429 rate_limited)")
    report.check(headers.get("Retry-After", "").isdigit(), "the 429 says when to retry (Retry-After)")

    address = "203.0.113.9"
    failures = [sign_in(a.url, f"1390000{i:04d}", "wrong-password", address)[0] for i in range(100, 105)]
    status, body, _ = sign_in(b.url, "13900000200", PASSWORD, address)
    other, _, _ = sign_in(b.url, "13900000201", PASSWORD, "203.0.113.10")
    report.note(f"per address: 5 wrong passwords from {address} on A for 5 phones: {failures}; "
                f"a 6th phone from that address on B: {status}; from another address on B: {other}")
    report.check(failures == [401] * 5 and status == 429, "per-address throttle reached on A holds on B")
    report.check(other == 201, "another address is not throttled (signs in on B: 201)")


def nginx_config(workdir: Path, a: AppServer, b: AppServer) -> tuple[Path, int, int]:
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


def forged_forwarded_for(report: Report, a: AppServer, base: str) -> None:
    """Through nginx a client cannot pick its address: five wrong passwords for five fresh phones, each with a
    different forged X-Forwarded-For, then a sixth fresh phone with the right password and yet another forged
    header. nginx overwrites the header with the address it saw (here 127.0.0.1 for all six), so the per-address
    limit (5 failures in 15 minutes) must refuse the sixth; each phone has failed at most once, so the per-phone
    limit cannot be what refuses it."""
    phones = [f"139{i:08d}" for i in range(150, 156)]  # seeded volunteers no other part signs in as
    failures = [sign_in(base, phone, "wrong-password", f"192.0.2.{i + 1}")[0] for i, phone in enumerate(phones[:5])]
    status, body, _ = sign_in(base, phones[5], PASSWORD, "192.0.2.66, 192.0.2.67")
    code = (body.get("error") or {}).get("code")
    report.note(f"through nginx, 5 wrong passwords for 5 fresh phones, each with its own forged X-Forwarded-For: "
                f"{failures}; a 6th fresh phone, right password, another forged header: {status} {code}")
    report.check(failures == [401] * 5 and status == 429 and code == "rate_limited",
                 "a forged X-Forwarded-For does not escape the per-address throttle through nginx (429 rate_limited)",
                 f"{failures} then {status} {code}")
    # The control: the same phone and password straight to instance A from an address of its own signs in, so
    # the 429 above was the address nginx saw, not that phone.
    direct, _, _ = sign_in(a.url, phones[5], PASSWORD, "203.0.113.77")
    report.check(direct == 201, "that 6th phone signs in from another address (201): the 429 was nginx's address",
                 f"{direct}")


def rolling_restart(report: Report, app, data: dict, b: AppServer, main: Path, workdir: Path, https_port: int,
                    project: int, volunteers: list[int], drain: bool, args) -> dict:
    """A steady stream of claims through nginx (one per volunteer given, to a project with a place for each) while
    instance B's main process (gunicorn's arbiter, granian's main process) gets SIGTERM and is started again.
    With `drain`, B is first taken out of nginx's upstream (`down`, `nginx -s reload`) and put back after it
    answers /healthz again, as docs/deploy.md says."""
    conf = workdir / "credits.conf"
    line = f"server {HOST}:{b.port} "

    def upstream_b(down: bool) -> None:
        text = conf.read_text()
        text, n = re.subn(rf"{re.escape(line)}(down )?", line + ("down " if down else ""), text)
        if n != 1:
            raise RuntimeError(f"upstream line for B not found in {conf}")
        conf.write_text(text)
        subprocess.run(["nginx", "-c", str(main), "-s", "reload"], check=True, capture_output=True)

    duration = 5.0  # seconds the stream is meant to last; B is stopped 1.25 s in
    concurrency = max(10, args.concurrency // 4)
    requests = [{"kind": "claim", "method": "POST", "path": f"/api/v1/projects/{project}/claims",
                 "token": data["tokens"][i], "port": https_port, "tls": True, "tag": i} for i in volunteers]
    error_log = workdir / "nginx-error.log"
    log_offset = error_log.stat().st_size if error_log.exists() else 0
    start = time.time() + 1.0
    load = Load(requests, concurrency=concurrency, spacing=concurrency * duration / len(requests), start_at=start)
    time.sleep(max(0.0, start + duration / 4 - time.time()))
    steps = []
    if drain:
        upstream_b(down=True)
        steps.append(f"B marked down and nginx reloaded at +{time.time() - start:.2f} s")
        time.sleep(1.0)  # the claims B still holds take milliseconds; the reloaded nginx sends it no new ones
    t_term = time.time()
    b.proc.send_signal(signal.SIGTERM)
    b.proc.wait(timeout=40)
    steps.append(f"SIGTERM to B's {b.server} main process at +{t_term - start:.2f} s, exited "
                 f"(code {b.proc.returncode}) {time.time() - t_term:.2f} s later")
    b.start()
    steps.append(f"B answering /healthz again at +{time.time() - start:.2f} s")
    if drain:
        upstream_b(down=False)
        steps.append(f"B back in the upstream, nginx reloaded at +{time.time() - start:.2f} s")
    run = load.wait()
    results = run["results"]
    report.note(f"{len(results)} claims through nginx in {run['elapsed']:.2f} s, {concurrency} clients; "
                + "; ".join(steps))
    report.note(f"answers: {by_status(results)}")
    lost = [r for r in results if r["status"] >= 500 or r["status"] == 0]
    # Did the app run the claims that were answered 5xx? Their volunteers' claim rows say.
    from sqlalchemy import select

    from credits.extensions import db
    from credits.projects.models import Claim

    with app.app_context():
        claimed = set(db.session.scalars(select(Claim.volunteer_id).where(Claim.project_id == project)))
        db.session.remove()
        db.engine.dispose()
    lost_ran = [r for r in lost if data["volunteer_ids"][r["tag"]] in claimed]
    with open(error_log, "rb") as f:
        f.seek(log_offset)
        reasons = Counter(m.group(1) for m in re.finditer(r"\) failed \(\d+: ([^)]+)\) while (?:reading response "
                                                            r"header|connecting)", f.read().decode(errors="replace")))
    if reasons:
        report.note(f"nginx's error log: {dict(reasons)}")
    if lost:
        report.note(f"{len(lost)} answered 5xx or lost: {Counter(r['status'] for r in lost)}; of these, "
                    f"{len(lost_ran)} had been stored by the app, {len(lost) - len(lost_ran)} never ran")
    missing = answered_in_database(app, results, {"claim": ("claim", ())})
    report.check(not missing, "every 2xx is the claim row stored", "; ".join(missing))
    figures, failures = consistency(app)
    report.check(not failures, "counters equal rows", "; ".join(failures))
    report.check(not any(r["status"] == 500 for r in results), "no 500 from the app")
    return {"results": results, "lost": lost, "lost_ran": lost_ran}


def through_nginx(report: Report, app, data: dict, a: AppServer, b: AppServer, workdir: Path, args) -> None:
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

        forged_forwarded_for(report, a, base)

        # Scaling out or in is an upstream line and a reload: nginx must keep answering through it.
        subprocess.run(["nginx", "-c", str(main), "-s", "reload"], check=True, capture_output=True)
        time.sleep(0.5)
        status, _, _ = http_tls("GET", f"{base}/healthz")
        report.check(status == 200, "nginx -s reload: still answering", f"{status}")

        # A rolling restart (docs/deploy.md §5), twice: SIGTERM to B's main process under load as it is, then with B
        # first taken out of nginx's upstream. The first is measured and written up; the second must lose nothing.
        # Each volunteer claims in one of the two (the policy allows 3 live claims; the two flash claims took 2).
        everyone = range(len(data["tokens"]))
        report.note("rolling restart of B under claims, SIGTERM only:")
        plain = rolling_restart(report, app, data, b, main, workdir, https_port, data["project_ids"][2],
                                list(everyone[0::2]), False, args)
        report.check(not plain["lost_ran"], "every claim answered 5xx was one the app never ran (safe to send again)",
                     f"{len(plain['lost_ran'])} of {len(plain['lost'])} had run")
        report.note("rolling restart of B under claims, drained from nginx first:")
        drained = rolling_restart(report, app, data, b, main, workdir, https_port, data["project_ids"][3],
                                  list(everyone[1::2]), True, args)
        report.check(not drained["lost"], "drained first: no 5xx, no failed connection",
                     by_status(drained["lost"]))
        breaches = verify_ledger(app)
        report.check(not breaches, "verify-ledger clean after the restarts", "; ".join(breaches[:5]))
        b.stop()
        statuses = Counter(http_tls("GET", f"{base}/api/v1/projects/{project}")[0] for _ in range(40))
        report.check(statuses == Counter({200: 40}), "with instance B stopped, nginx sends everything to A",
                     f"{dict(statuses)}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def http_tls(method: str, url: str, body: dict | None = None, headers: dict | None = None
             ) -> tuple[int, dict, Message | dict]:
    """One request, HTTP or HTTPS (nginx's self-signed certificate trusted): (status, JSON body, headers); 0 when
    the connection failed. The headers are urllib's message, whose `get` ignores case (granian sends lower case)."""
    import json
    import ssl
    import urllib.error
    import urllib.request

    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    req = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10, context=context) as resp:
            return resp.status, json.loads(resp.read() or b"{}"), resp.headers
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}"), exc.headers
        except ValueError:
            return exc.code, {}, exc.headers
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
    roomy = {"capacity": args.volunteers, "waitlist_capacity": 0}  # a place for everyone: every claim a write
    data = seed(app, volunteers=args.volunteers, projects=[{"title": "双实例秒抢", **places},
                                                           {"title": "经 nginx 秒抢", **places},
                                                           {"title": "滚动重启（直接 SIGTERM）", **roomy},
                                                           {"title": "滚动重启（先摘除）", **roomy}])
    print(f"seeded {args.volunteers} volunteers with tokens, 2 projects of {args.capacity} + {args.waitlist} places "
          f"and 2 with a place for everyone in {time.monotonic() - t0:.1f} s; Redis on port {redis.port}", flush=True)
    a = make_instance(args.server, "A", free_port(), args.workers, env, workdir)
    b = make_instance(args.server, "B", free_port(), args.workers, env, workdir)
    reports = []
    try:
        a.start()
        b.start()
        report = Report(f"flash claim split across two {args.server} instances (ports {a.port}, {b.port}), "
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
                reports[0].check(False, f"no traceback in {instance.server}'s log {instance.log_path}")
    finally:
        a.stop()
        b.stop()
        redis.stop()
    code = finish(reports)
    if code == 0 and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"kept {workdir} ({args.server} and nginx logs)")
    return code


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a small load for CI")
    p.add_argument("--pg-url", default=PG_URL, help="dropped and recreated (default: %(default)s)")
    p.add_argument("--server", choices=SERVERS, default="gunicorn",
                   help="the app server: gunicorn with deploy/gunicorn.conf.py, granian with deploy/granian.env")
    p.add_argument("--workers", type=int, default=2, help="workers per instance")
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
