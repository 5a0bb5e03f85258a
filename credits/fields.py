"""Marshmallow fields shared by the feature schemas."""

from __future__ import annotations

import re
import unicodedata

from flask_babel import gettext as _
from marshmallow import ValidationError, fields, validate

# Rows are keyed by PostgreSQL `integer` columns: a larger id can name nothing, and would overflow the query.
MAX_ID = 2**31 - 1

# NUL cannot be stored in PostgreSQL text, a lone surrogate cannot be encoded for either database (nor hashed, as a
# password), and the other C0 controls are illegal in the XML of an XLSX export. Tabs and line breaks are text.
_UNSTORABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


class WholeNumber(fields.Integer):
    """An integer that refuses 2.5 instead of truncating it to 2 (marshmallow's non-strict Integer truncates), yet
    still accepts "3" from an HTML form: places, minutes, coins and quotas are whole numbers."""

    def _validated(self, value):
        if isinstance(value, float) and not value.is_integer():
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


class Id(fields.Integer):
    """The id of a row: 1 to MAX_ID, so that an id no row can have is a clear 422, not an overflow in the query."""

    def __init__(self, **kwargs):
        super().__init__(validate=validate.Range(min=1, max=MAX_ID), **kwargs)


class Text(fields.String):
    """A string the databases and the exports can hold: control characters (bar tab and line breaks) and lone
    surrogates are refused."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if _UNSTORABLE.search(text):
            raise ValidationError(_("不能包含控制字符。"))
        return text


class TypedCode(Text):
    """A code someone typed or pasted (a check-in code, a voucher code): full-width characters read as their
    ASCII forms and every space dropped before the length is checked, so " 066 213 " is the code 066213."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        return "".join(unicodedata.normalize("NFKC", text).split())


_PHONE = re.compile(r"1[3-9]\d{9}")
# What people put between and around the digits of a phone number: spaces of every width, dashes, dots, brackets.
_PHONE_PUNCTUATION = re.compile(r"[\s\-‐‑‒–—―.()（）]")


def normalize_phone(text: str) -> str:
    """A phone number as typed or pasted — "+86 139 1234 5678", "0086-139…", "(139)1234-5678", full-width
    digits — in the 11-digit form the accounts are keyed by. Anything else comes back tidied but not a phone."""
    # NFKC again after the spaces go: NFKC turns "´" into a space and a combining accent, which, its space taken
    # away, composes with the letter before it (hypothesis found "A´"); normalising twice must change nothing.
    text = unicodedata.normalize("NFKC", _PHONE_PUNCTUATION.sub("", unicodedata.normalize("NFKC", text)))
    for prefix in ("+86", "0086", "86"):
        if text.startswith(prefix) and _PHONE.fullmatch(text[len(prefix):]):
            return text[len(prefix):]
    return text


def is_phone(text: str) -> bool:
    return _PHONE.fullmatch(text) is not None


class Phone(Text):
    """A mainland mobile number (SPEC 1: the login), normalised by normalize_phone before it is checked. Strict
    (the default) refuses what is not one; strict=False, for signing in, passes it on to fail as a wrong
    password would, so the form never says which phones exist."""

    def __init__(self, *, strict: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.strict = strict

    def _deserialize(self, value, attr, data, **kwargs):
        phone = normalize_phone(super()._deserialize(value, attr, data, **kwargs))
        if self.strict and not is_phone(phone):
            raise ValidationError(_("请输入 11 位中国大陆手机号。"))
        return phone
