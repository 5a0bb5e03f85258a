"""Every list is paginated: `{"items": [...], "page", "per_page", "total"}` (SPEC 3.2)."""

from __future__ import annotations

import functools
from typing import Any

from marshmallow import Schema, fields, validate
from sqlalchemy import Select, func, literal, select

from credits.extensions import db

MAX_PER_PAGE = 100


class PageArgs(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=MAX_PER_PAGE))


@functools.cache
def page_schema(item: type[Schema]) -> type[Schema]:
    """The list envelope around `item`, one class per item schema so the OpenAPI document names it once."""
    name = item.__name__.removesuffix("Schema").removesuffix("Out") + "Page"
    return Schema.from_dict({
        "items": fields.List(fields.Nested(item), required=True),
        "page": fields.Integer(required=True),
        "per_page": fields.Integer(required=True),
        "total": fields.Integer(required=True),
    }, name=name)


def paginate(stmt: Select, page: int, per_page: int, *, scalars: bool = True,
             count: Select | None = None) -> dict[str, Any]:
    """One page of `stmt` (which must be ordered) and the total count — counted by `count` when the caller has a
    cheaper query for it. A page past the end is empty."""
    counted = count if count is not None else stmt.order_by(None)
    if not counted._group_by_clauses and not counted._distinct:
        # The count needs the rows, not their columns: dropping them spares every correlated sub-select.
        counted = counted.with_only_columns(literal(1), maintain_column_froms=True)
    total = db.session.scalar(select(func.count()).select_from(counted.subquery()))
    query = stmt.limit(per_page).offset((page - 1) * per_page)
    items = db.session.scalars(query).all() if scalars else db.session.execute(query).all()
    return {"items": items, "page": page, "per_page": per_page, "total": total}
