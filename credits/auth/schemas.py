"""Input and output schemas for accounts, sign-in and organisations — the one place input is validated."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_login import current_user
from marshmallow import Schema, ValidationError, fields, pre_load, validate, validates_schema

from credits.auth.models import CodePurpose, OrgKind, Role
from credits.auth.passwords import password_problem
from credits.auth.services import star_level
from credits.fields import Id, Phone, Text
from credits.merchants.services import mask_phone
from credits.pagination import PageArgs
from credits.timeutil import LocalDateTime

PASSWORD = validate.Length(min=8, max=128, error=_l("密码长度须为 8 到 128 个字符。"))
CODE = validate.Regexp(r"^\d{6}$", error=_l("验证码为 6 位数字。"))


class StripMixin:
    """Trims surrounding whitespace from string input, as people paste phone numbers with spaces."""

    @pre_load
    def strip_strings(self, data, **_kwargs):
        if not isinstance(data, dict):
            return data
        return {k: v.strip() if isinstance(v, str) and k not in ("password", "current_password",
                                                                  "new_password") else v
                for k, v in data.items()}


class NewPasswordMixin:
    """A password someone chooses: refused when common or made of the account's phone or name (passwords.py). The
    phone and name are the form's own, or the signed-in user's when they change their password."""

    password_field = "password"

    @validates_schema(skip_on_field_errors=False)
    def guessable_password(self, data, **_kwargs):
        password = data.get(self.password_field)
        if not password:
            return
        user = current_user if current_user and current_user.is_authenticated else None
        problem = password_problem(password, phone=data.get("phone") or (user.phone if user else None),
                                   name=data.get("name") or (user.name if user else None))
        if problem:
            raise ValidationError(problem, self.password_field)


class RegisterIn(NewPasswordMixin, StripMixin, Schema):
    phone = Phone(required=True)
    password = Text(required=True, validate=PASSWORD, load_only=True)
    name = Text(required=True, validate=validate.Length(min=1, max=50))
    organization_id = Id(load_default=None, allow_none=True)
    # The SMS code sent to `phone` (POST /auth/sms-code, purpose `register`): required unless the
    # `phone_verification` policy is `off`.
    code = Text(load_default=None, allow_none=True, validate=CODE, load_only=True)


class SmsCodeIn(StripMixin, Schema):
    phone = Phone(required=True)
    purpose = fields.String(required=True, validate=validate.OneOf([p.value for p in CodePurpose]))


class PasswordResetIn(NewPasswordMixin, StripMixin, Schema):
    phone = Phone(required=True)
    code = Text(required=True, validate=CODE, load_only=True)
    password = Text(required=True, validate=PASSWORD, load_only=True)


class PhoneChangeIn(StripMixin, Schema):
    phone = Phone(required=True)
    code = Text(required=True, validate=CODE, load_only=True)


class TokenIn(StripMixin, Schema):
    phone = Phone(required=True, strict=False, validate=validate.Length(max=20))
    password = Text(required=True, validate=validate.Length(max=128), load_only=True)


class PasswordChangeIn(NewPasswordMixin, Schema):
    password_field = "new_password"
    current_password = Text(required=True, validate=validate.Length(max=128))
    new_password = Text(required=True, validate=PASSWORD)


class OrganizationOut(Schema):
    id = fields.Integer()
    name = fields.String()
    kind = fields.String()


class OrganizationIn(StripMixin, Schema):
    name = Text(required=True, validate=validate.Length(min=2, max=120))
    kind = fields.String(required=True, validate=validate.OneOf([k.value for k in OrgKind]))


class UserAdminIn(StripMixin, Schema):
    name = Text(validate=validate.Length(min=1, max=50))
    roles = fields.List(fields.String(validate=validate.OneOf([r.value for r in Role])))
    organization_id = Id(allow_none=True)
    active = fields.Boolean()


class MeOut(Schema):
    id = fields.Integer()
    phone = fields.String()
    name = fields.String()
    roles = fields.List(fields.String())
    organization = fields.Nested(OrganizationOut, allow_none=True)  # null until its coordinators confirm
    requested_organization_id = fields.Integer(allow_none=True)
    merchant_id = fields.Integer(allow_none=True)
    volunteer_no = fields.String()
    approved_minutes = fields.Integer()
    star_level = fields.Function(lambda user: star_level(user.approved_minutes))
    phone_verified = fields.Function(lambda user: user.phone_verified_at is not None)


class JoinRequestOut(Schema):
    """Someone waiting to join an organisation: its coordinators see no more of them than they need to decide."""
    id = fields.Integer()
    name = fields.String()
    phone = fields.Function(lambda user: mask_phone(user.phone))
    requested_at = LocalDateTime(attribute="organization_requested_at")
    # A member of another organisation asking to move: the coordinators deciding see where from.
    organization = fields.Nested(OrganizationOut, allow_none=True)


class MemberArgs(PageArgs):
    q = fields.String(validate=validate.Length(max=50), metadata={"description": "part of a name or phone"})


class MemberOut(Schema):
    """A member of an organisation with their participation, for its coordinators."""
    id = fields.Integer()
    name = fields.String()
    phone = fields.String()
    party_member = fields.Boolean()
    volunteer_no = fields.String(allow_none=True)
    approved_minutes = fields.Integer(metadata={"description": "lifetime approved service"})
    projects = fields.Integer(metadata={"description": "projects joined (claims not cancelled)"})
    last_activity_at = LocalDateTime(allow_none=True, metadata={"description": "latest claim or service record"})
    pending_activation = fields.Boolean(metadata={"description": "imported, has not yet set a password"})


class JoinIn(Schema):
    """A signed-in person asks to join an organisation (or to move to it from their own)."""
    organization_id = Id(required=True)


class TokenOut(Schema):
    token = fields.String()
    expires_at = LocalDateTime()
    user = fields.Nested(MeOut)
