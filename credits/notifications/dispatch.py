"""After commit, hand the transaction's new deliveries on: to the job queue when REDIS_URL is set, else to this
process (a thread after a request; at once in a command, or with SMS_INLINE = "sync"). Before commit nothing
leaves: a rolled-back event sends nothing. Whatever goes wrong here is logged, never raised: the user's request
has already committed, and the sweep (delivery.sweep) picks up whatever was not handed on."""

from __future__ import annotations

import logging
import threading

from flask import current_app, has_request_context
from flask_sqlalchemy.session import Session
from sqlalchemy import event

from credits.extensions import db

log = logging.getLogger(__name__)
_KEY = "credits.new_deliveries"
_COMMITTED = "credits.committed_deliveries"


def schedule_after_commit(delivery_id: int) -> None:
    db.session.info.setdefault(_KEY, []).append(delivery_id)


# A savepoint's commit or rollback fires these too; only the outermost transaction decides. (An id from a
# savepoint that rolled back stays on the list: its delivery is not found and is skipped.)


@event.listens_for(Session, "after_rollback")
def _forget(session) -> None:
    if not session.in_nested_transaction():
        session.info.pop(_KEY, None)


@event.listens_for(Session, "after_commit")
def _committed(session) -> None:
    if not session.in_nested_transaction() and _KEY in session.info:
        session.info[_COMMITTED] = session.info.pop(_KEY)


@event.listens_for(Session, "after_transaction_end")
def _hand_on(session, transaction) -> None:
    """Once the committed transaction has ended and its connection is back in the pool: on SQLite the delivery's
    own transaction would otherwise wait for a write lock the committing connection may still hold."""
    if transaction.parent is not None:
        return
    ids = session.info.pop(_COMMITTED, None)
    if not ids:
        return
    try:
        app = current_app._get_current_object()
        if app.config.get("REDIS_URL"):
            from credits.notifications.worker import enqueue

            enqueue(app, ids)
        elif app.config["SMS_INLINE"] == "sync" or not has_request_context():
            _deliver_all(app, ids)  # a command (seed-demo, remind) waits for its SMS rather than exit under them
        else:
            threading.Thread(target=_deliver_all, args=(app, ids), daemon=True, name="sms-delivery").start()
    except Exception:
        log.exception("could not hand on deliveries %r; the sweep will", ids)


def _deliver_all(app, ids: list[int]) -> None:
    from credits.notifications.delivery import deliver

    # A context of its own: its own database session, as the committing one is still finishing its commit.
    with app.app_context():
        for delivery_id in ids:
            try:
                deliver(delivery_id)
            except Exception:
                log.exception("delivery %r failed outside its channel", delivery_id)
