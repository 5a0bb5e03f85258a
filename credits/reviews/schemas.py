"""Schemas for reviews, candidates, reviewers, scores and the ranking."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from credits.auth.schemas import StripMixin
from credits.fields import Id, Text, WholeNumber
from credits.pagination import PageArgs
from credits.reports.exports import FORMATS
from credits.reviews.services import SCORE_MAX, SCORE_MIN
from credits.timeutil import LocalDateTime

EXPORT_FORMATS = ("json", *FORMATS)


class ReviewIn(StripMixin, Schema):
    year = WholeNumber(required=True, validate=validate.Range(min=2000, max=2100))
    title = Text(required=True, validate=validate.Length(min=1, max=100))


class ReviewCandidatesIn(Schema):
    project_ids = fields.List(Id(), required=True, validate=validate.Length(min=1, max=200))


class ReviewersIn(Schema):
    user_ids = fields.List(Id(), required=True, validate=validate.Length(min=1, max=100))


class ReviewScoreIn(StripMixin, Schema):
    score = WholeNumber(required=True, validate=validate.Range(min=SCORE_MIN, max=SCORE_MAX))
    comment = Text(load_default="", validate=validate.Length(max=2000))


class ReviewRankingArgs(PageArgs):
    format = fields.String(load_default="json", validate=validate.OneOf(EXPORT_FORMATS))


class ReviewerRef(Schema):
    id = fields.Integer()
    name = fields.String()


class CandidateProjectRef(Schema):
    id = fields.Integer()
    title = fields.String()
    category = fields.String()
    status = fields.String()
    starts_at = LocalDateTime()
    organization = fields.Function(lambda p: p.organization.name)


class CandidateFiguresOut(Schema):
    approved_minutes = fields.Integer()
    approved_hours = fields.Function(lambda f: round(f.approved_minutes / 60, 1))
    volunteers = fields.Integer()
    capacity = fields.Integer()
    confirmed = fields.Integer()
    fill_rate = fields.Float()
    no_shows = fields.Integer()


class ReviewOut(Schema):
    id = fields.Integer()
    year = fields.Integer()
    title = fields.String()
    status = fields.String()
    created_by = fields.Nested(ReviewerRef)
    created_at = LocalDateTime()
    closed_at = LocalDateTime(allow_none=True)


class ReviewScoreOut(Schema):
    review_id = fields.Integer()
    project_id = fields.Integer()
    reviewer_id = fields.Integer()
    score = fields.Integer()
    comment = fields.String()
    updated_at = LocalDateTime()


class ReviewCandidateOut(Schema):
    project = fields.Nested(CandidateProjectRef)
    figures = fields.Nested(CandidateFiguresOut)
    scores = fields.Integer()
    my_score = fields.Nested(ReviewScoreOut, allow_none=True)


class ReviewDetailOut(ReviewOut):
    """The review as one coordinator sees it: every candidate's figures, how many have scored it, and their own
    score if they were invited (the others' are in the ranking)."""

    candidates = fields.List(fields.Nested(ReviewCandidateOut))
    reviewers = fields.List(fields.Nested(ReviewerRef))
    is_reviewer = fields.Boolean()


class ReviewRemarkOut(Schema):
    reviewer = fields.String()
    score = fields.Integer()
    comment = fields.String()


class ReviewRankingRowOut(Schema):
    rank = fields.Integer()
    project = fields.Nested(CandidateProjectRef)
    mean_score = fields.Float(allow_none=True)
    scores = fields.Integer()
    figures = fields.Nested(CandidateFiguresOut)
    remarks = fields.List(fields.Nested(ReviewRemarkOut))


class ReviewRankingOut(Schema):
    review = fields.Nested(ReviewOut)
    items = fields.List(fields.Nested(ReviewRankingRowOut), required=True)
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    total = fields.Integer(required=True)
