"""Schemas for the inbox and SMS settings."""

from __future__ import annotations

from flask_babel import get_locale
from marshmallow import Schema, fields, validate

from credits.fields import Id
from credits.notifications.kinds import KINDS
from credits.notifications.services import title_and_body
from credits.pagination import PageArgs
from credits.timeutil import LocalDateTime


class NotificationListArgs(PageArgs):
    unread = fields.Boolean(load_default=False)


def _rendered(note, part: int) -> str:
    return title_and_body(note, str(get_locale()))[part]


class NotificationOut(Schema):
    id = fields.Integer()
    kind = fields.String(metadata={"description": ", ".join(KINDS)})
    title = fields.Function(lambda note: _rendered(note, 0), metadata={"description": "in the request's language"})
    body = fields.Function(lambda note: _rendered(note, 1))
    created_at = LocalDateTime()
    read_at = LocalDateTime(allow_none=True)
    link = fields.String(allow_none=True, metadata={"description": "the page the message is about"})


class ReadIn(Schema):
    ids = fields.List(Id(), validate=validate.Length(min=1, max=100),
                      metadata={"description": "the messages to mark read; none: all of them"})


SmsChoices = fields.Dict(keys=fields.String(validate=validate.OneOf(list(KINDS))), values=fields.Boolean(),
                         required=True)


class SmsSettingsIn(Schema):
    sms = SmsChoices


class SmsSettingsOut(Schema):
    sms = fields.Dict(keys=fields.String(), values=fields.Boolean(),
                      metadata={"description": "per kind: whether it is also sent by SMS"})
