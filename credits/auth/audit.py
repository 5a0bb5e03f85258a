"""The audit trail: who changed what, when, from where."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import has_request_context, request
from sqlalchemy import insert

from credits.auth.models import AuditEvent
from credits.extensions import db

# A Core INSERT built once: the ORM's unit of work for one audit row cost a winning claim more than its SQL.
_INSERT = insert(AuditEvent.__table__)


def record_event(action: str, obj: Any = None, *, actor: Any, details: dict | None = None) -> None:
    """Write an audit event for a state change, in the current transaction (undone with it). `obj` must have its
    id: flushed, or loaded."""
    record_events([(action, obj, details)], actor=actor)


def record_events(events: Iterable[tuple[str, Any, dict | None]], *, actor: Any) -> None:
    """record_event for many changes by one actor, as (action, obj, details), in one INSERT: a statement runs the
    session's pending writes first, so a roster of thousands written one event at a time would be thousands of
    flushes."""
    address = request.remote_addr if has_request_context() else "cli"
    rows = [{"action": action, "actor_id": getattr(actor, "id", None),
             "object_type": obj.__tablename__ if obj is not None else None,
             "object_id": str(obj.id) if obj is not None else None, "address": address, "details": details}
            for action, obj, details in events]
    if rows:
        db.session.execute(_INSERT, rows)
