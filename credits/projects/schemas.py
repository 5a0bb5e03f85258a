"""Project and claim schemas: the one place their input is validated."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from credits.auth.schemas import StripMixin
from credits.fields import Text, WholeNumber
from credits.projects.models import ClaimStatus, ProjectStatus
from credits.projects.services import waitlist_position
from credits.timeutil import LocalDateTime


class ProjectIn(StripMixin, Schema):
    title = Text(required=True, validate=validate.Length(min=1, max=100))
    category = Text(required=True, validate=validate.Length(min=1, max=40))
    description = Text(validate=validate.Length(max=4000))
    location = Text(required=True, validate=validate.Length(min=1, max=200))
    starts_at = LocalDateTime(required=True)
    ends_at = LocalDateTime(required=True)
    capacity = WholeNumber(required=True, validate=validate.Range(min=1, max=100_000))
    waitlist_capacity = WholeNumber(allow_none=True, validate=validate.Range(min=0, max=100_000))
    publish_at = LocalDateTime(allow_none=True)
    block_minutes = WholeNumber(allow_none=True, validate=validate.Range(min=1, max=24 * 60))
    coins_per_block = WholeNumber(allow_none=True, validate=validate.Range(min=1, max=1000))

    @validates_schema(skip_on_field_errors=False)  # every refusal at once: the fields' and this one
    def period(self, data, **_kwargs):
        if "starts_at" in data and "ends_at" in data and data["ends_at"] <= data["starts_at"]:
            raise ValidationError(str(_l("结束时间必须晚于开始时间。")), "ends_at")


class PublishIn(Schema):
    publish_at = LocalDateTime(allow_none=True)


class ProjectListArgs(Schema):
    status = fields.String(validate=validate.OneOf([s.value for s in ProjectStatus]))
    category = Text(validate=validate.Length(max=40))


class ClaimListArgs(Schema):
    status = fields.String(validate=validate.OneOf([s.value for s in ClaimStatus]))


class OrganizationRef(Schema):
    id = fields.Integer()
    name = fields.String()


class ProjectOut(Schema):
    id = fields.Integer()
    title = fields.String()
    category = fields.String()
    description = fields.String()
    location = fields.String()
    organization = fields.Nested(OrganizationRef)
    starts_at = LocalDateTime()
    ends_at = LocalDateTime()
    publish_at = LocalDateTime(allow_none=True)
    status = fields.String()
    capacity = WholeNumber()
    waitlist_capacity = WholeNumber()
    confirmed_count = fields.Integer()
    waitlist_count = fields.Integer()
    places_left = fields.Integer()
    block_minutes = WholeNumber()
    coins_per_block = WholeNumber()


class VolunteerRef(Schema):
    id = fields.Integer()
    name = fields.String()
    volunteer_no = fields.String()
    phone = fields.String()


class ProjectRef(Schema):
    id = fields.Integer()
    title = fields.String()
    starts_at = LocalDateTime()
    ends_at = LocalDateTime()
    location = fields.String()


class ClaimOut(Schema):
    id = fields.Integer()
    project_id = fields.Integer()
    status = fields.String()
    waitlist_position = fields.Function(waitlist_position, allow_none=True)
    created_at = LocalDateTime()
    confirmed_at = LocalDateTime(allow_none=True)
    cancelled_at = LocalDateTime(allow_none=True)
    no_show_at = LocalDateTime(allow_none=True)
    project = fields.Nested(ProjectRef)


class RosterClaimOut(ClaimOut):
    volunteer = fields.Nested(VolunteerRef)


class ProjectPatchIn(ProjectIn):
    """Any subset of the project's fields (load it with partial=True)."""
