"""Engine tuning and the retry policy that make writes safe under concurrency on SQLite and PostgreSQL.

SQLite: the stdlib driver issues no BEGIN before a SELECT and SQLite ignores FOR UPDATE, so a
read-check-write would interleave. We take over transaction control (isolation_level=None) and begin
every write transaction with BEGIN IMMEDIATE, which takes the database's single write lock up front;
reads in GET requests begin DEFERRED so they do not queue behind writers (WAL lets them run alongside).

PostgreSQL: READ COMMITTED with guarded updates and row locks; serialization failures and deadlocks
(40001, 40P01) are retried by `retrying`, which replays the whole unit of work.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from flask import current_app, has_request_context, request
from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.local import LocalProxy

from credits.extensions import db

log = logging.getLogger(__name__)

T = TypeVar("T")
READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


def configure_engine(engine: Engine) -> None:
    """Install the SQLite transaction hooks; PostgreSQL needs none. Called in the app's context."""
    if engine.dialect.name != "sqlite":
        return
    busy_ms = int(current_app.config["SQLITE_BUSY_TIMEOUT"] * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={busy_ms}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        read_only = has_request_context() and request.method in READ_ONLY_METHODS
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def read_alone(statement, params: dict):
    """The one row of a lone SELECT, read before the request's unit of work on a connection in autocommit: on
    PostgreSQL that spares the BEGIN and the ROLLBACK around it, two of its four round trips, and the server's work
    for them (the flash crowd's refusal, which is all most of the crowd gets). SQLite reads it in the session: its
    driver's autocommit setting is the one our transaction hooks rely on, not to be reset per connection."""
    if db.engine.dialect.name == "sqlite":
        return db.session.execute(statement, params).one_or_none()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        return conn.execute(statement, params).one_or_none()


def rollback() -> None:
    """Roll the session back. A connection the database dropped (a restart, a failover, an administrator's
    terminate) cannot even roll back: it is thrown away instead, as the server has already undone whatever it
    held, and the caller goes on to answer (a 503, or the response a finished request made) instead of a 500."""
    try:
        db.session.rollback()
    except DBAPIError as exc:
        log.warning("connection lost, discarded: %s", exc.orig)
        db.session().invalidate()


def end_session(_exc: BaseException | None = None) -> None:
    """End the request's session: a teardown, registered to run before Flask-SQLAlchemy's own, whose ROLLBACK
    would fail on a dropped connection."""
    rollback()
    db.session.remove()


def lock(obj, *, reread: bool = True) -> None:
    """Take the row lock of a loaded object for the rest of the transaction and re-read it, so the caller decides
    on the state the winner of a race left (FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE already holds the
    database's write lock). `reread=False` when the lock only serialises a decision made from other rows (a
    volunteer's claims), so the object's own columns need not be read again."""
    if isinstance(obj, LocalProxy):  # current_user
        obj = obj._get_current_object()
    model = type(obj)
    db.session.execute(select(model.id).where(model.id == obj.id).with_for_update())
    if reread:
        db.session.refresh(obj)


def commit_as_written() -> None:
    """Commit without expiring what the session holds, for an answer built from the objects this request has just
    written (a claim's 201): after a plain commit each of them is read back row by row."""
    session = db.session()
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = True


def is_retryable(exc: BaseException) -> bool:
    """A conflict that a replay of the same unit of work can resolve."""
    if not isinstance(exc, DBAPIError):
        return False
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate in RETRYABLE_SQLSTATES:
        return True
    return isinstance(exc, OperationalError) and "database is locked" in str(exc.orig)


def retrying(fn: Callable[..., T]) -> Callable[..., T]:
    """Run a unit of work, rolling back and replaying it on a retryable conflict, with jittered backoff."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs) -> T:
        attempts, budget = current_app.config["DB_RETRIES"], current_app.config["DB_RETRY_SECONDS"]
        started = time.monotonic()
        for attempt in range(1, attempts + 1):
            try:
                return fn(*args, **kwargs)
            except DBAPIError as exc:
                rollback()
                if attempt == attempts or not is_retryable(exc) or time.monotonic() - started > budget:
                    raise
                delay = min(0.5, 0.01 * 2**attempt) * random.uniform(0.5, 1.5)
                log.info("retrying %r after conflict (attempt %r): %s", fn.__name__, attempt, exc.orig)
                time.sleep(delay)
        raise AssertionError("unreachable")

    return wrapper


def in_transaction(work: Callable[[], T]) -> T:
    """Run `work` as one committed transaction, with the retry policy (for CLI and background jobs)."""

    @retrying
    def unit() -> T:
        try:
            result = work()
        except Exception:
            db.session.rollback()  # else what the failed unit flushed would be committed by the next one
            raise
        db.session.commit()
        return result

    return unit()
