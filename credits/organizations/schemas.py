"""Input and output schemas for organisations, roster imports and activation."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from credits.auth.schemas import PASSWORD
from credits.fields import Text
from credits.organizations.services import action_text, problem_text
from credits.pagination import PageArgs, page_schema
from credits.timeutil import LocalDateTime


class ImportRowOut(Schema):
    row = fields.Integer()
    name = fields.String()
    phone = fields.String()
    party_member = fields.Boolean(allow_none=True)
    note = fields.String()
    problem = fields.Function(problem_text)  # what is wrong with the row, in the reader's language; null if nothing
    problem_code = fields.String(attribute="problem")
    action = fields.String()  # create, invite or skip, for the rows without a problem
    action_text = fields.Function(action_text)


class ImportOut(Schema):
    id = fields.Integer()
    filename = fields.String()
    rows = fields.List(fields.Nested(ImportRowOut))
    ok = fields.Integer()
    problems = fields.Integer()
    confirmed_at = LocalDateTime(allow_none=True)


class ConfirmOut(Schema):
    created = fields.Integer()
    invited = fields.Integer()
    skipped = fields.Integer()


class ActivateIn(Schema):
    password = Text(required=True, validate=PASSWORD, load_only=True)


class PreviewArgs(PageArgs):
    only = fields.String(load_default="", validate=validate.OneOf(["", "problems"]))


class ImportPageOut(Schema):
    """A stored preview, its rows a page at a time."""
    id = fields.Integer()
    filename = fields.String()
    ok = fields.Integer()
    problems = fields.Integer()
    confirmed_at = LocalDateTime(allow_none=True)
    result = fields.Nested(ConfirmOut, allow_none=True)
    rows = fields.Nested(page_schema(ImportRowOut))
