"""Report arguments (a period of local days, a format, a sort) and the shapes of the figures."""

from __future__ import annotations

from datetime import date

from flask_babel import lazy_gettext as _l
from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate, validates_schema

from credits.pagination import PageArgs
from credits.reports.exports import FORMATS
from credits.reports.services import MAX_PERIOD_DAYS, TABLES, Period
from credits.timeutil import LocalDate, LocalDateTime, local_zone, utcnow

PERIOD_NAMES = ("month", "quarter", "year")


def today() -> date:
    return utcnow().astimezone(local_zone()).date()


class PeriodArgs(Schema):
    """`from` and `to` (local days, both included), or a named period; the default is this year."""

    from_ = LocalDate(data_key="from")
    to = LocalDate()
    period = fields.String(validate=validate.OneOf(PERIOD_NAMES))

    @validates_schema
    def sensible(self, data, **_kwargs):
        first, last = data.get("from_"), data.get("to")
        if (first is None) != (last is None):
            raise ValidationError(str(_l("请同时填写开始和结束日期。")), "to" if first else "from")
        if first and last < first:
            raise ValidationError(str(_l("结束日期不能早于开始日期。")), "to")
        if first and (last - first).days >= MAX_PERIOD_DAYS:
            raise ValidationError(str(_l("时间段最长五年。")), "to")

    @post_load
    def to_period(self, data, **_kwargs):
        first, last, name = data.pop("from_", None), data.pop("to", None), data.pop("period", "year")
        data["period"] = Period(first, last) if first else Period.named(name, today())
        return data


class QuarterArgs(Schema):
    """The printable quarterly summary's year and quarter; the default is the current quarter."""

    class Meta:
        unknown = EXCLUDE

    year = fields.Integer(validate=validate.Range(min=2000, max=2100))
    q = fields.Integer(validate=validate.OneOf((1, 2, 3, 4)))


class FormatArgs(Schema):
    format = fields.String(load_default="json", validate=validate.OneOf(("json", *FORMATS)))


def table_args(name: str) -> type[Schema]:
    """The query arguments of one table: period, page, format, and a sort among that table's columns."""
    return type(f"{name.title()}ReportArgs", (PeriodArgs, PageArgs, FormatArgs), {
        "sort": fields.String(validate=validate.OneOf(TABLES[name].sortable)),
        "order": fields.String(validate=validate.OneOf(("asc", "desc"))),
    })


class VolunteerFigures(Schema):
    registered = fields.Integer()
    total = fields.Integer()
    active = fields.Integer()


class ProjectTotals(Schema):
    published = fields.Integer()
    capacity = fields.Integer()
    confirmed = fields.Integer()
    fill_rate = fields.Float()


class HourFigures(Schema):
    approved_minutes = fields.Integer()
    approved_records = fields.Integer()
    pending_records = fields.Integer()


class CoinFigures(Schema):
    issued = fields.Integer()
    clawed_back = fields.Integer()
    adjusted = fields.Integer()
    redeemed = fields.Integer()
    expired = fields.Integer()
    outstanding = fields.Integer(metadata={"description": "held by volunteers and in escrow at the period's end"})


class MerchantRedemptions(Schema):
    merchant_id = fields.Integer()
    name = fields.String()
    vouchers = fields.Integer()
    coins = fields.Integer()


class Series(Schema):
    unit = fields.String(metadata={"description": "day or month"})
    labels = fields.List(fields.String())
    approved_minutes = fields.List(fields.Integer())
    coins_issued = fields.List(fields.Integer())
    coins_redeemed = fields.List(fields.Integer())
    volunteers_registered = fields.List(fields.Integer())


class SummaryOut(Schema):
    from_ = fields.Date(data_key="from", attribute="from")
    to = fields.Date()
    volunteers = fields.Nested(VolunteerFigures)
    projects = fields.Nested(ProjectTotals)
    hours = fields.Nested(HourFigures)
    coins = fields.Nested(CoinFigures)
    merchants = fields.List(fields.Nested(MerchantRedemptions))
    series = fields.Nested(Series)


class ProjectRowOut(Schema):
    id = fields.Integer()
    title = fields.String()
    organization = fields.String()
    category = fields.String()
    starts_at = LocalDateTime()
    status = fields.String()
    capacity = fields.Integer()
    confirmed = fields.Integer()
    fill_rate = fields.Float()
    volunteers = fields.Integer()
    approved_minutes = fields.Integer()
    no_shows = fields.Integer()


class OrganizationRowOut(Schema):
    id = fields.Integer()
    name = fields.String()
    kind = fields.String()
    members = fields.Integer()
    projects = fields.Integer()
    capacity = fields.Integer()
    confirmed = fields.Integer()
    fill_rate = fields.Float()
    volunteers = fields.Integer()
    approved_minutes = fields.Integer()
    no_shows = fields.Integer()


class MerchantRowOut(Schema):
    id = fields.Integer()
    name = fields.String()
    category = fields.String()
    services = fields.Integer()
    vouchers_issued = fields.Integer()
    vouchers_redeemed = fields.Integer()
    coins_redeemed = fields.Integer()
    vouchers_outstanding = fields.Integer()


class VolunteerRowOut(Schema):
    id = fields.Integer()
    volunteer_no = fields.String(allow_none=True)
    name = fields.String()
    organization = fields.String(allow_none=True)
    approved_minutes = fields.Integer()
    records = fields.Integer()
    projects = fields.Integer()
    lifetime_minutes = fields.Integer()
    balance = fields.Integer()


class RecordRowOut(Schema):
    id = fields.Integer()
    started_at = LocalDateTime()
    ended_at = LocalDateTime(allow_none=True)
    volunteer_no = fields.String(allow_none=True)
    volunteer = fields.String()
    project = fields.String()
    organization = fields.String()
    minutes = fields.Integer(allow_none=True)
    source = fields.String()
    status = fields.String()
    reviewed_at = LocalDateTime(allow_none=True)


class ParticipationRowOut(Schema):
    id = fields.Integer()
    name = fields.String()
    kind = fields.String()
    members = fields.Integer(metadata={"description": "current members, whatever the period"})
    party_members = fields.Integer()
    activated = fields.Integer(metadata={"description": "members who are not pending activation"})
    served = fields.Integer(metadata={"description": "members with approved service that started in the period"})
    participation_rate = fields.Float(metadata={"description": "served / members, 0 to 1"})
    approved_minutes = fields.Integer()
    projects = fields.Integer(metadata={"description": "projects the members served in"})
    coins_earned = fields.Integer(metadata={"description": "issued to the members less clawed back"})
    coins_redeemed = fields.Integer(metadata={"description": "the members' vouchers redeemed in the period"})


ROWS = {"projects": ProjectRowOut, "organizations": OrganizationRowOut, "merchants": MerchantRowOut,
        "volunteers": VolunteerRowOut, "records": RecordRowOut}
