"""Marshmallow fields shared by the feature schemas."""

from __future__ import annotations

from marshmallow import fields


class WholeNumber(fields.Integer):
    """An integer that refuses 2.5 instead of truncating it to 2 (marshmallow's non-strict Integer truncates), yet
    still accepts "3" from an HTML form: places, minutes, coins and quotas are whole numbers."""

    def _validated(self, value):
        if isinstance(value, float) and not value.is_integer():
            raise self.make_error("invalid", input=value)
        return super()._validated(value)
