"""Schemas for merchants, services, vouchers, redemptions and settlements."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from credits.auth.schemas import PASSWORD, NewPasswordMixin, StripMixin
from credits.fields import Id, Phone, Text, TypedCode, WholeNumber
from credits.merchants.models import MerchantCategory, VoucherStatus
from credits.merchants.services import group_code, mask_name, mask_phone, shown_status
from credits.timeutil import LocalDate, LocalDateTime


class MerchantIn(StripMixin, Schema):
    name = Text(required=True, validate=validate.Length(min=1, max=100))
    address = Text(required=True, validate=validate.Length(min=1, max=200))
    category = fields.String(required=True, validate=validate.OneOf([c.value for c in MerchantCategory]))
    description = Text(load_default="", validate=validate.Length(max=2000))


class StaffIn(NewPasswordMixin, StripMixin, Schema):
    phone = Phone(required=True)
    name = Text(required=True, validate=validate.Length(min=1, max=50))
    password = Text(required=True, validate=PASSWORD, load_only=True)


class ServiceIn(StripMixin, Schema):
    name = Text(required=True, validate=validate.Length(min=1, max=100))
    description = Text(load_default="", validate=validate.Length(max=2000))
    price = WholeNumber(required=True, validate=validate.Range(min=1, max=100_000))
    daily_quota = WholeNumber(load_default=None, allow_none=True, validate=validate.Range(min=0, max=100_000))


class ServicePatchIn(StripMixin, Schema):
    name = Text(validate=validate.Length(min=1, max=100))
    description = Text(validate=validate.Length(max=2000))
    price = WholeNumber(validate=validate.Range(min=1, max=100_000))
    daily_quota = WholeNumber(allow_none=True, validate=validate.Range(min=0, max=100_000))
    active = fields.Boolean()


class VoucherIn(Schema):
    service_id = Id(required=True)


class RedeemIn(Schema):
    code = TypedCode(required=True, validate=validate.Length(min=1, max=40))


class PeriodArgs(Schema):
    from_ = LocalDate(data_key="from")
    to = LocalDate()


class SettlementIn(Schema):
    from_ = LocalDate(required=True, data_key="from")
    to = LocalDate(required=True)

    @validates_schema(skip_on_field_errors=False)
    def ordered(self, data, **_kwargs):
        # Dates are inclusive, so from == to is one day; to before from is a typo, not "nothing to settle".
        if "from_" in data and "to" in data and data["to"] < data["from_"]:
            raise ValidationError(str(_l("结束日期不能早于开始日期。")), "to")


class VoucherListArgs(Schema):
    status = fields.String(validate=validate.OneOf([s.value for s in VoucherStatus]))


class ServiceOut(Schema):
    id = fields.Integer()
    merchant_id = fields.Integer()
    name = fields.String()
    description = fields.String()
    price = fields.Integer()
    daily_quota = fields.Integer(allow_none=True)
    active = fields.Boolean()


class MerchantOut(Schema):
    id = fields.Integer()
    name = fields.String()
    address = fields.String()
    category = fields.String()
    description = fields.String()
    active = fields.Boolean()
    services = fields.Method("_active_services")

    def _active_services(self, merchant):
        return ServiceOut(many=True).dump([s for s in merchant.services if s.active])


class MerchantRef(Schema):
    id = fields.Integer()
    name = fields.String()
    address = fields.String()


class VoucherOut(Schema):
    id = fields.Integer()
    code = fields.Function(lambda v: group_code(v.code))
    coins = fields.Integer()
    status = fields.Function(shown_status)
    issued_at = LocalDateTime()
    expires_at = LocalDateTime()
    redeemed_at = LocalDateTime(allow_none=True)
    service = fields.Nested(ServiceOut)
    merchant = fields.Nested(MerchantRef)


class RedemptionOut(Schema):
    """What merchant staff see: the voucher and a masked volunteer, never the code's owner in full."""

    id = fields.Integer()
    coins = fields.Integer()
    status = fields.String()
    redeemed_at = LocalDateTime(allow_none=True)
    service = fields.Nested(ServiceOut)
    volunteer_name = fields.Function(lambda v: mask_name(v.volunteer.name))
    volunteer_phone = fields.Function(lambda v: mask_phone(v.volunteer.phone))


class StatementLineOut(Schema):
    service_id = fields.Integer()
    name = fields.String()
    count = fields.Integer()
    coins = fields.Integer()


class SettlementOut(Schema):
    id = fields.Integer()
    merchant_id = fields.Integer()
    period_from = LocalDateTime()
    period_to = LocalDateTime()
    vouchers = fields.Integer()
    coins = fields.Integer()
    lines = fields.List(fields.Nested(StatementLineOut))
    created_at = LocalDateTime()
