"""The delivery worker on RQ: only delivery ids travel through Redis; the database row is the truth. Runs in the
foreground (`flask credits worker`), with the sweep in a thread beside it. Without REDIS_URL the same command
polls the database instead."""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask
from redis import Redis
from rq import Queue, SimpleWorker

from credits.notifications.delivery import deliver, sweep

log = logging.getLogger(__name__)
QUEUE_NAME = "credits-sms"


def _queue(app: Flask) -> Queue:
    queue = app.extensions.get("credits.sms_queue")
    if queue is None:
        queue = app.extensions["credits.sms_queue"] = Queue(
            QUEUE_NAME, connection=Redis.from_url(app.config["REDIS_URL"], socket_timeout=5))
    return queue


def enqueue(app: Flask, ids: list[int]) -> None:
    """One job per delivery id, in one round trip."""
    queue = _queue(app)
    with queue.connection.pipeline() as pipe:
        for delivery_id in ids:
            queue.enqueue_call(deliver_job, args=(delivery_id,), result_ttl=0, failure_ttl=24 * 3600,
                               timeout=app.config["SMS_JOB_TIMEOUT"], pipeline=pipe)
        pipe.execute()


def deliver_job(delivery_id: int) -> str:
    """The RQ job: runs in the worker, inside the app context `run` pushed."""
    return deliver(delivery_id)


def _sweep_forever(app: Flask, hand_on, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            with app.app_context():
                due = sweep()
                if due:
                    log.info("sweep hands on %r deliveries", len(due))
                    hand_on(due)
        except Exception:
            log.exception("sweep failed; trying again")
        stop.wait(app.config["SMS_SWEEP_SECONDS"])


def run(app: Flask, *, burst: bool = False) -> None:
    """Work until stopped (or, with `burst`, until the queue is empty after one sweep)."""
    if not app.config.get("REDIS_URL"):
        _poll(app, burst=burst)
        return
    queue = _queue(app)
    stop = threading.Event()
    if burst:
        with app.app_context():
            due = sweep()
        if due:
            enqueue(app, due)
    else:
        threading.Thread(target=_sweep_forever, args=(app, lambda ids: enqueue(app, ids), stop), daemon=True,
                         name="sms-sweep").start()
    try:
        with app.app_context():
            SimpleWorker([queue], connection=queue.connection).work(burst=burst, logging_level="WARNING")
    finally:
        stop.set()


def _poll(app: Flask, *, burst: bool) -> None:
    log.warning("no REDIS_URL: delivering from the database every %r s", app.config["SMS_SWEEP_SECONDS"])
    while True:
        with app.app_context():
            for delivery_id in sweep():
                deliver(delivery_id)
        if burst:
            return
        time.sleep(app.config["SMS_SWEEP_SECONDS"])
