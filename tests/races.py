"""Racing real threads against the test database: every job in its own thread and application context, all
released at once by a barrier."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from flask import has_app_context

from credits.database import in_transaction
from credits.errors import DomainError
from credits.extensions import db


def race(app, jobs: list[Callable[[], object]], *, unit: bool = True) -> tuple[list, float]:
    """Run every job in its own thread and application context, released together by a barrier, as one unit
    of work (or, with unit=False, as it is). Returns each job's result (or its DomainError's code, or any other
    exception) and the seconds the race took."""
    if has_app_context():  # a worker process racing on its own has no test session to end
        db.session.rollback()  # the test's own session must hold no transaction (on SQLite: no write lock)
    barrier = threading.Barrier(len(jobs))
    results: list = [None] * len(jobs)

    def run(i: int, job: Callable[[], object]) -> None:
        with app.app_context():
            try:
                barrier.wait(timeout=30)
                results[i] = in_transaction(job) if unit else job()
            except DomainError as exc:
                results[i] = exc.code
            except Exception as exc:  # noqa: BLE001  (reported to the test, which fails on it)
                results[i] = exc
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a racer hung"
    return results, time.perf_counter() - started
