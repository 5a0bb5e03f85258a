"""JSON API for check-in, service records, review, wallet and certificates (SPEC 3.2)."""

from __future__ import annotations

from flask_login import current_user
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from credits.auth.models import Role
from credits.auth.permissions import BEARER, role_required
from credits.auth.throttle import per_user_limit
from credits.errors import DomainError
from credits.extensions import db
from credits.hours import services
from credits.hours.models import RecordStatus
from credits.hours.schemas import (
    ApprovalOut,
    BulkReviewIn,
    CertificateIn,
    CertificateOut,
    CheckinCodeOut,
    CodeIn,
    ManualRecordIn,
    ReasonIn,
    RecordListArgs,
    RecordOut,
    RevocationOut,
    TransactionOut,
    WalletOut,
)
from credits.hours.services import issue_certificate
from credits.ledger.services import find_user_account, history, wallet_figures
from credits.pagination import PageArgs, page_schema, paginate
from credits.projects.services import get_claim, get_project
from credits.timeutil import local_day_range

blp = Blueprint("hours_api", __name__, description="Check-in, service hours, review, wallet, certificates")


# Six-digit codes are guessable only by brute force: attempts are limited per user.
code_rate_limited = per_user_limit("CHECKIN_RATE_LIMIT", scope="checkin")


class RecordPageArgs(PageArgs, RecordListArgs):
    pass


class BulkResult(Schema):
    id = fields.Integer()
    ok = fields.Boolean()
    code = fields.String(allow_none=True)
    status = fields.String(allow_none=True, metadata={"description": "the record's status after the action"})
    coins_issued = fields.Integer()


class BulkOut(Schema):
    results = fields.List(fields.Nested(BulkResult))


@blp.post("/projects/<int:project_id>/checkin-code")
@role_required(Role.COORDINATOR)
@blp.response(201, CheckinCodeOut)
@blp.doc(security=BEARER)
def checkin_code(project_id):
    """The project's current on-site code (rotates every 60 s)."""
    code, expires_at = services.checkin_code(get_project(project_id, viewer=current_user), actor=current_user)
    return {"code": code, "expires_at": expires_at}


@blp.post("/claims/<int:claim_id>/checkin")
@role_required(Role.VOLUNTEER)
@code_rate_limited
@blp.arguments(CodeIn)
@blp.response(201, RecordOut)
@blp.doc(security=BEARER)
def check_in(data, claim_id):
    record = services.check_in(get_claim(claim_id, viewer=current_user), data["code"], volunteer=current_user)
    db.session.commit()
    return record


@blp.post("/claims/<int:claim_id>/checkout")
@role_required(Role.VOLUNTEER)
@code_rate_limited
@blp.arguments(CodeIn)
@blp.response(200, RecordOut)
@blp.doc(security=BEARER)
def check_out(data, claim_id):
    """Close the check-in; up to 8 h that day is approved at once and coins issued."""
    record, _coins = services.check_out(get_claim(claim_id, viewer=current_user), data["code"],
                                        volunteer=current_user)
    db.session.commit()
    return record


@blp.post("/claims/<int:claim_id>/hours")
@role_required(Role.VOLUNTEER)
@blp.arguments(ManualRecordIn)
@blp.response(201, RecordOut)
@blp.doc(security=BEARER)
def file_manual(data, claim_id):
    """File a manual record (补录); it waits for review."""
    record = services.file_manual(get_claim(claim_id, viewer=current_user), data, volunteer=current_user)
    db.session.commit()
    return record


@blp.get("/hours")
@role_required(Role.COORDINATOR)
@blp.arguments(RecordPageArgs, location="query")
@blp.response(200, page_schema(RecordOut))
@blp.doc(security=BEARER)
def review_queue(args):
    """Records of the coordinator's organisation's projects, oldest first."""
    stmt = services.review_queue(current_user, status=args.get("status"), project_id=args.get("project_id"))
    return paginate(stmt, args["page"], args["per_page"])


@blp.get("/me/hours")
@role_required(Role.VOLUNTEER)
@blp.arguments(RecordPageArgs, location="query")
@blp.response(200, page_schema(RecordOut))
@blp.doc(security=BEARER)
def my_hours(args):
    return paginate(services.my_records(current_user, status=args.get("status")), args["page"], args["per_page"])


@blp.post("/hours/<int:record_id>/approve")
@role_required(Role.COORDINATOR, Role.ADMIN)
@blp.response(200, ApprovalOut, description="approved; coins issued")
@blp.alt_response(202, schema=ApprovalOut,
                  description="a first approval: the record is awaiting_second_approval (SPEC 2.3), no coins yet")
@blp.doc(security=BEARER)
def approve(record_id):
    """Approve a record. Above the policy's limits the first approval answers 202 and another coordinator of the
    organiser, or an admin, completes it."""
    record = services.get_record(record_id, viewer=current_user)
    coins = services.approve(record, reviewer=current_user)
    db.session.commit()
    status = 202 if record.status == RecordStatus.AWAITING_SECOND_APPROVAL else 200
    return {"record": record, "coins_issued": coins}, status


@blp.post("/hours/<int:record_id>/reject")
@role_required(Role.COORDINATOR, Role.ADMIN)
@blp.arguments(ReasonIn)
@blp.response(200, RecordOut)
@blp.doc(security=BEARER)
def reject(data, record_id):
    record = services.reject(services.get_record(record_id, viewer=current_user), data["reason"],
                             reviewer=current_user)
    db.session.commit()
    return record


@blp.post("/hours/<int:record_id>/revoke")
@role_required(Role.COORDINATOR)
@blp.arguments(ReasonIn)
@blp.response(200, RevocationOut)
@blp.doc(security=BEARER)
def revoke(data, record_id):
    record = services.get_record(record_id, viewer=current_user)
    clawed = services.revoke(record, data["reason"], reviewer=current_user)
    db.session.commit()
    record.coins_clawed_back = clawed
    return record


@blp.post("/hours/review")
@role_required(Role.COORDINATOR)
@blp.arguments(BulkReviewIn)
@blp.response(200, BulkOut)
@blp.doc(security=BEARER)
def review_many(data):
    """Approve or reject several records at once; each succeeds or fails on its own."""
    return {"results": review_batch(data["ids"], data["action"], data["reason"], reviewer=current_user)}


def review_batch(ids: list[int], action: str, reason: str, *, reviewer) -> list[dict]:
    """Each record in its own savepoint, so one refusal does not undo the others; commits once. Records are
    taken in id order, so two reviewers sweeping overlapping batches lock them in the same order."""
    results = []
    for record_id in sorted(set(ids)):
        try:
            with db.session.begin_nested():
                record = services.get_record(record_id, viewer=reviewer)
                if action == "approve":
                    coins = services.approve(record, reviewer=reviewer)
                else:
                    services.reject(record, reason, reviewer=reviewer)
                    coins = 0
            results.append({"id": record_id, "ok": True, "code": None, "status": record.status,
                            "coins_issued": coins})
        except DomainError as exc:
            results.append({"id": record_id, "ok": False, "code": exc.code, "status": None, "coins_issued": 0})
    db.session.commit()
    return results


@blp.get("/me/wallet")
@role_required(Role.VOLUNTEER)
@blp.response(200, WalletOut)
@blp.doc(security=BEARER)
def wallet():
    return wallet_figures(find_user_account(current_user.id))


@blp.get("/me/transactions")
@role_required(Role.VOLUNTEER)
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_schema(TransactionOut))
@blp.doc(security=BEARER)
def transactions(args):
    account = find_user_account(current_user.id)
    if account is None:
        return {"items": [], "page": args["page"], "per_page": args["per_page"], "total": 0}
    return paginate(history(account), args["page"], args["per_page"], scalars=False)


@blp.post("/me/certificates")
@role_required(Role.VOLUNTEER)
@blp.arguments(CertificateIn)
@blp.response(201, CertificateOut)
@blp.doc(security=BEARER)
def request_certificate(data):
    """A 志愿服务证明 for the approved hours between two dates (inclusive)."""
    certificate = issue_certificate(current_user, *local_day_range(data["from_"], data["to"]))
    db.session.commit()
    return certificate
