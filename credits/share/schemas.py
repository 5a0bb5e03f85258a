"""The 公示 figures as the API sends them."""

from __future__ import annotations

from marshmallow import Schema, fields


class VolunteersOut(Schema):
    served = fields.Integer(required=True, metadata={"description": "volunteers with approved hours"})
    registered = fields.Integer(required=True)


class HoursOut(Schema):
    approved_minutes = fields.Integer(required=True)


class CoinsOut(Schema):
    issued = fields.Integer(required=True)
    clawed_back = fields.Integer(required=True)
    redeemed = fields.Integer(required=True)
    expired = fields.Integer(required=True)
    adjusted = fields.Integer(required=True, metadata={"description": "net admin adjustments toward volunteers"})


class TotalsOut(Schema):
    volunteers = fields.Nested(VolunteersOut, required=True)
    hours = fields.Nested(HoursOut, required=True)
    coins = fields.Nested(CoinsOut, required=True)
    projects_done = fields.Integer(required=True)
    services_given = fields.Integer(required=True)
    coins_spent_at_merchants = fields.Integer(required=True)


class MerchantFiguresOut(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    services_this_year = fields.Integer(required=True)
    services_all_time = fields.Integer(required=True)


class RankedProjectOut(Schema):
    rank = fields.Integer(required=True)
    project_id = fields.Integer(required=True)
    title = fields.String(required=True)
    organization = fields.String(required=True)
    mean_score = fields.Float(required=True)
    approved_minutes = fields.Integer(required=True)


class PublishedReviewOut(Schema):
    id = fields.Integer(required=True)
    year = fields.Integer(required=True)
    title = fields.String(required=True)
    ranking = fields.List(fields.Nested(RankedProjectOut), required=True)


class SeriesOut(Schema):
    labels = fields.List(fields.String(), required=True)
    issued = fields.List(fields.Integer(), required=True)
    redeemed = fields.List(fields.Integer(), required=True)


class PublicSummaryOut(Schema):
    year = fields.Integer(required=True)
    generated_at = fields.DateTime(required=True)
    this_year = fields.Nested(TotalsOut, required=True)
    all_time = fields.Nested(TotalsOut, required=True)
    coins_outstanding = fields.Integer(required=True, metadata={
        "description": "coins volunteers hold now (balances and escrow for their vouchers)"})
    merchants = fields.List(fields.Nested(MerchantFiguresOut), required=True)
    reviews = fields.List(fields.Nested(PublishedReviewOut), required=True)
    series = fields.Nested(SeriesOut, required=True, metadata={"description": "this year's coins by month"})
