"""gunicorn settings for one app host (docs/deploy.md): `gunicorn -c deploy/gunicorn.conf.py wsgi:app`.

Every value can be overridden on the command line or by the environment variables read here.
"""

import multiprocessing
import os
import tempfile

# Each worker counts its own requests; prometheus_client keeps every worker's values in files under this directory
# and a scrape of any worker adds them up (credits/observability.py). It must be set before the app is imported,
# and be empty at each start: a directory of its own per arbiter.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="credits-metrics-"))

# The app host's private address; nginx on the front host is the only client.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Sync workers: each request is one short database transaction. On 2 cores, 2 workers served the flash claim as
# fast as 4 (docs/benchmarks.md); twice the cores leaves room for requests waiting on PostgreSQL.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2))
worker_class = "sync"
# The app is built once, in the arbiter, and workers are forked from it: a worker that dies (killed, OOM,
# max_requests) is replaced in milliseconds instead of a second of imports, and every worker runs the same code
# even if files change under it. The price: new code needs a restart, not a HUP (docs/deploy.md).
preload_app = True
# A flash crowd arrives all at once: let the kernel queue it rather than refuse connections.
backlog = 2048
# A request slower than this is stuck (a lock held elsewhere); the arbiter replaces the worker.
timeout = 30
graceful_timeout = 20
# Recycle workers now and then, staggered, so a slow leak never needs a restart by hand.
max_requests = 5000
max_requests_jitter = 500
# Logs to stdout/stderr, for systemd's journal; %(L)s is the request time in seconds, for p95 from the log.
accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(L)ss "%(a)s" %({x-request-id}o)s'
# nginx's address is the only one whose X-Forwarded-* gunicorn itself believes; the app reads them through
# TRUSTED_PROXY_COUNT.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def post_fork(server, worker):
    """A forked worker must not share the arbiter's database connections (none should exist, but a pool that
    is disposed here cannot be shared by mistake)."""
    from credits.extensions import db
    from wsgi import app

    with app.app_context():
        db.engine.dispose(close=False)


def child_exit(server, worker):
    """A dead worker's live gauges leave the metrics; its counters stay summed in (prometheus_client's rule)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
