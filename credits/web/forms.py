"""HTML forms validated by the same marshmallow schemas as the API; Flask-WTF supplies only CSRF."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import render_template, request
from marshmallow import Schema, ValidationError, fields

from credits.errors import DomainError, localize
from credits.extensions import db

FORM_ERROR_STATUSES = frozenset({401, 409, 422})


def form_payload(schema: Schema) -> dict[str, Any]:
    """The posted form as the schema expects it: lists for List fields, checkboxes as booleans, and blank
    fields left out (a blank required field is then refused as "请填写此项", not by its length)."""
    data: dict[str, Any] = {}
    for field in schema.load_fields.values():
        name = field.data_key or field.name  # the input's name is the key the schema loads, as in the API
        if isinstance(field, fields.List):
            data[name] = request.form.getlist(name)
        elif isinstance(field, fields.Boolean):
            data[name] = name in request.form
        elif name in request.form and request.form[name] == "" and field.allow_none:
            data[name] = None
        elif request.form.get(name, "") != "":
            data[name] = request.form[name]
    return data


def form_view(schema: Schema, template: str, on_valid: Callable[[dict], Any], /, **context: Any):
    """Render `template`; on POST validate with `schema` and call `on_valid`, re-rendering with the errors
    (status 422, nothing changed) when validation or a business rule refuses the input. The first three are
    positional-only so that a template may be given a `schema` of its own (the policy page is)."""
    errors: dict = {}
    if request.method == "POST":
        try:
            return on_valid(schema.load(form_payload(schema)))
        except ValidationError as exc:
            db.session.rollback()
            errors = localize(exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages})
        except DomainError as exc:
            if exc.status not in FORM_ERROR_STATUSES:
                raise
            db.session.rollback()
            errors = dict(exc.fields or {})
            # Said once: a refusal already shown beside its field (a wrong check-in code) is not repeated on top.
            if not any(str(exc.message) in messages for messages in errors.values()):
                errors.setdefault("_schema", [str(exc.message)])
    status = 422 if errors else 200
    return render_template(template, errors=errors, values=request.form, **context), status
