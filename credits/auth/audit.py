"""The audit trail: who changed what, when, from where."""

from __future__ import annotations

from typing import Any

from flask import has_request_context, request

from credits.auth.models import AuditEvent
from credits.extensions import db


def record_event(action: str, obj: Any = None, *, actor: Any, details: dict | None = None) -> AuditEvent:
    """Add an audit event for a state change in the current transaction (flushed with it)."""
    event = AuditEvent(
        action=action,
        actor_id=getattr(actor, "id", None),
        object_type=obj.__tablename__ if obj is not None else None,
        object_id=str(obj.id) if obj is not None else None,
        address=request.remote_addr if has_request_context() else "cli",
        details=details,
    )
    db.session.add(event)
    return event
