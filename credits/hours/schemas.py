"""Schemas for service records, review, wallet and certificates."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from credits.fields import Id, Text, TypedCode
from credits.hours.models import RecordStatus
from credits.projects.schemas import ProjectRef, VolunteerRef
from credits.timeutil import LocalDate, LocalDateTime


class CodeIn(Schema):
    code = TypedCode(required=True, validate=validate.Length(min=1, max=20))


class ManualRecordIn(Schema):
    started_at = LocalDateTime(required=True)
    ended_at = LocalDateTime(required=True)
    note = Text(load_default="", validate=validate.Length(max=1000))


class ReasonIn(Schema):
    reason = Text(required=True, validate=validate.Length(min=1, max=500))


class BulkReviewIn(Schema):
    ids = fields.List(Id(), required=True, validate=validate.Length(min=1, max=100))
    action = fields.String(required=True, validate=validate.OneOf(["approve", "reject"]))
    reason = Text(load_default="", validate=validate.Length(max=500))

    @validates_schema(skip_on_field_errors=False)
    def reason_for_reject(self, data, **_kwargs):
        if data.get("action") == "reject" and not data.get("reason"):
            raise ValidationError(str(_l("驳回需要填写原因。")), "reason")


class RecordListArgs(Schema):
    status = fields.String(validate=validate.OneOf([s.value for s in RecordStatus]))
    project_id = Id()


class RecordOut(Schema):
    id = fields.Integer()
    claim_id = fields.Integer()
    project_id = fields.Integer()
    project = fields.Nested(ProjectRef)
    volunteer = fields.Nested(VolunteerRef)
    started_at = LocalDateTime()
    ended_at = LocalDateTime(allow_none=True)
    minutes = fields.Integer(allow_none=True)
    note = fields.String()
    source = fields.String()
    status = fields.String()
    reason = fields.String(allow_none=True)
    reviewed_at = LocalDateTime(allow_none=True)
    created_at = LocalDateTime()


class ApprovalOut(Schema):
    record = fields.Nested(RecordOut)
    coins_issued = fields.Integer()


class RevocationOut(RecordOut):
    coins_clawed_back = fields.Integer()


class CheckinCodeOut(Schema):
    code = fields.String()
    expires_at = LocalDateTime()


class WalletOut(Schema):
    balance = fields.Integer()
    held = fields.Integer()
    earned = fields.Integer()
    spent = fields.Integer()
    expired = fields.Integer()
    debt = fields.Integer(metadata={"description": "coins owed from revoked hours; paid first from coins received"})


class TransactionOut(Schema):
    id = fields.Integer()
    kind = fields.String()
    amount = fields.Integer()
    balance_after = fields.Integer()
    created_at = LocalDateTime()
    memo = fields.String()


class CertificateIn(Schema):
    from_ = LocalDate(required=True, data_key="from")
    to = LocalDate(required=True)


class CertificateLine(Schema):
    project_id = fields.Integer()
    title = fields.String()
    organization = fields.String()
    minutes = fields.Integer()


class CertificateOut(Schema):
    number = fields.String()
    volunteer_name = fields.Function(lambda c: c.volunteer.name)
    volunteer_no = fields.Function(lambda c: c.volunteer.volunteer_no)
    period_from = LocalDateTime()
    period_to = LocalDateTime()
    total_minutes = fields.Integer()
    lines = fields.List(fields.Nested(CertificateLine))
    issued_at = LocalDateTime()
    verify_url = fields.Method("_verify_url")

    def _verify_url(self, certificate):
        from flask import url_for

        return url_for("hours.verify_certificate", number=certificate.number, _external=True)
