"""HTML pages for service hours: the coordinator's on-site check-in screen and review queue, the volunteer's
check-in, manual records (补录), wallet and certificates, and the public certificate verification page.

Every page calls the same service functions as the JSON API (credits.hours.api), so the two cannot drift apart.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import segno
from flask import Blueprint, flash, jsonify, make_response, redirect, render_template, request, url_for
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from marshmallow import Schema, fields, validate
from sqlalchemy import case, select

from credits.auth.models import Role
from credits.auth.permissions import login_required, role_required
from credits.auth.services import STAR_HOURS, star_level
from credits.errors import DomainError, NotFound
from credits.extensions import db, limiter
from credits.fields import Id
from credits.hours import services
from credits.hours.api import code_rate_limited, review_batch
from credits.hours.models import Certificate, RecordStatus, ServiceRecord
from credits.hours.schemas import BulkReviewIn, CertificateIn, CodeIn, ManualRecordIn, ReasonIn
from credits.ledger import memos
from credits.ledger.models import TxKind
from credits.ledger.services import find_user_account, history, wallet_figures
from credits.pagination import PageArgs, paginate
from credits.projects.models import Claim, ClaimStatus, Project, ProjectStatus
from credits.projects.services import get_claim, get_project, my_claims
from credits.projects.views import CLAIM_STATUS_LABELS
from credits.timeutil import duration as format_duration
from credits.timeutil import local_day_range, local_zone, utcnow
from credits.web.forms import form_view

bp = Blueprint("hours", __name__, template_folder="templates")


@bp.app_template_filter("memo")
def memo(text: str) -> str:
    """A ledger memo in the reader's language."""
    return memos.shown(text)


RECORD_STATUS_LABELS = {"open": _l("签到中"), "pending": _l("待审核"), "approved": _l("已通过"),
                        "awaiting_second_approval": _l("待复核"), "rejected": _l("已驳回"), "revoked": _l("已撤销"),
                        "lapsed": _l("已失效")}
SOURCE_LABELS = {"checkin": _l("现场签到"), "manual": _l("补录")}
TX_KIND_LABELS = {TxKind.ISSUE: _l("发放"), TxKind.CLAWBACK: _l("扣回"), TxKind.HOLD: _l("兑换冻结"),
                  TxKind.RELEASE: _l("退回"), TxKind.REDEEM: _l("兑换"), TxKind.SETTLE: _l("结算"),
                  TxKind.EXPIRE: _l("过期"), TxKind.ADJUST: _l("调整")}
# Why a record in a batch was left alone, by the code the service refused it with.
BATCH_REFUSALS = {"forbidden": _l("%(n)s 条是您本人的记录，需由其他协调员审核"),
                  "invalid_state": _l("%(n)s 条状态已变化（可能已被他人处理）"),
                  "not_found": _l("%(n)s 条找不到")}
CERTIFICATE_RATE_LIMIT = "60 per minute"


@bp.context_processor
def helpers() -> dict[str, Any]:
    return {"record_status_labels": RECORD_STATUS_LABELS,
            "source_labels": SOURCE_LABELS, "tx_kind_labels": TX_KIND_LABELS,
            "claim_status_labels": CLAIM_STATUS_LABELS}


def _time(value: datetime) -> str:
    return format_datetime(value, _("M月d日 HH:mm"))


def _iso(value: datetime) -> str:
    """An instant as JavaScript's Date.parse reads it (UTC, milliseconds)."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds")


def _qr(url: str, title: str) -> str:
    """A QR code as inline SVG that scales with its box (a viewBox, no fixed size)."""
    return segno.make_qr(url, error="m").svg_inline(scale=1, omitsize=True, title=title, svgclass="qr-svg")


def _no_store(body: Any, status: int = 200):
    """A response that no browser or proxy keeps: check-in codes go stale within a minute."""
    response = make_response(body, status)
    response.headers["Cache-Control"] = "no-store"
    return response


# --- the coordinator's on-site check-in screen ---------------------------------------------------------


def _current_code(project: Project) -> dict[str, Any]:
    """The code to show now, its expiry and its QR, which opens the volunteer's check-in page with it."""
    code, expires_at = services.checkin_code(project, actor=current_user)
    url = url_for(".checkin_page", project_id=project.id, code=code, _external=True)
    return {"code": code, "expires_at": expires_at, "url": url,
            "qr_svg": _qr(url, _("扫码签到：%(title)s", title=project.title))}


@bp.get("/coordinate/projects/<int:project_id>/checkin")
@role_required(Role.COORDINATOR)
def checkin_screen(project_id: int):
    """A big QR and six digits, rotating about every 60 s (hours.js fetches the next one)."""
    project = get_project(project_id, viewer=current_user)
    try:
        shown, message, status = _current_code(project), None, 200
    except DomainError as exc:
        if exc.status != 409:
            raise
        shown, message, status = None, str(exc.message), 409
    return _no_store(render_template("hours/checkin_screen.html", project=project, shown=shown, message=message,
                                     attendance=services.attendance(project, actor=current_user), now=utcnow(),
                                     iso=_iso), status)


@bp.get("/coordinate/projects/<int:project_id>/checkin/code")
@role_required(Role.COORDINATOR)
def checkin_code(project_id: int):
    """The check-in screen's feed: {code, expires_at, qr_svg, server_now} and who has checked in {confirmed,
    checked_in, present}. Showing a code changes nothing, so no audit."""
    project = get_project(project_id, viewer=current_user)
    try:
        shown = _current_code(project)
    except DomainError as exc:
        return _no_store(jsonify(error={"code": exc.code, "message": str(exc.message)}), exc.status)
    attendance = services.attendance(project, actor=current_user)
    return _no_store(jsonify(code=shown["code"], expires_at=_iso(shown["expires_at"]), qr_svg=shown["qr_svg"],
                             server_now=_iso(utcnow()), confirmed=attendance.confirmed,
                             checked_in=attendance.checked_in, present=attendance.present))


# --- the volunteer's check-in and check-out --------------------------------------------------------------


def _claim_on(project: Project) -> Claim | None:
    """The volunteer's claim on the project: the confirmed one if any, else the latest."""
    confirmed_first = case({ClaimStatus.CONFIRMED.value: 0}, value=Claim.status, else_=1)
    return db.session.scalars(select(Claim).where(Claim.volunteer_id == current_user.id,
                                                  Claim.project_id == project.id)
                              .order_by(confirmed_first, Claim.id.desc()).limit(1)).first()


def _open_checkin(claim: Claim | None) -> ServiceRecord | None:
    """The claim's open check-in, unless it is old enough to have lapsed (the service lapses it on next use)."""
    if claim is None or claim.status != ClaimStatus.CONFIRMED:
        return None
    return db.session.scalars(select(ServiceRecord).where(
        ServiceRecord.claim_id == claim.id, ServiceRecord.status == RecordStatus.OPEN,
        ServiceRecord.started_at > utcnow() - services.LAPSE_AFTER)).first()


def _checkin_context(project_id: int) -> dict[str, Any]:
    project = get_project(project_id, viewer=current_user)
    claim = _claim_on(project)
    return {"project": project, "claim": claim, "open_record": _open_checkin(claim), "now": utcnow()}


def _prefilled_code() -> dict[str, str]:
    code = services.checkin_digits(request.args.get("code", ""))[:6]
    return {"code": code} if code else {}


@bp.get("/checkin/<int:project_id>")
@role_required(Role.VOLUNTEER)
def checkin_page(project_id: int):
    """What the on-site QR opens: 签到 or 签退, with the scanned code filled in."""
    context = _checkin_context(project_id)
    return _no_store(render_template("hours/checkin.html", errors={}, values=_prefilled_code(), **context))


def _require_claim(context: dict[str, Any]) -> Claim:
    if context["claim"] is None:
        raise NotFound(what="claim")
    return context["claim"]


@bp.post("/checkin/<int:project_id>")
@role_required(Role.VOLUNTEER)
@code_rate_limited
def check_in(project_id: int):
    context = _checkin_context(project_id)
    claim = _require_claim(context)

    def done(data):
        record = services.check_in(claim, data["code"], volunteer=current_user)
        db.session.commit()
        flash(_("签到成功！从 %(time)s 开始计时。服务结束离开时，请再扫现场二维码签退。",
                time=_time(record.started_at)), "success")
        return redirect(url_for(".checkin_page", project_id=project_id))

    return form_view(CodeIn(), "hours/checkin.html", done, **context)


@bp.post("/checkin/<int:project_id>/out")
@role_required(Role.VOLUNTEER)
@code_rate_limited
def check_out(project_id: int):
    context = _checkin_context(project_id)
    claim = _require_claim(context)

    def done(data):
        record, coins = services.check_out(claim, data["code"], volunteer=current_user)
        db.session.commit()
        duration = format_duration(record.minutes)
        if record.status == RecordStatus.APPROVED and coins:
            flash(_("签退成功！本次服务 %(duration)s，已自动通过，获得 %(coins)s 公益币。", duration=duration,
                    coins=coins), "success")
        elif record.status == RecordStatus.APPROVED:
            flash(_("签退成功！服务 %(duration)s，已计入时长，满 %(block)s 分钟发币。",
                    duration=duration, block=claim.project.block_minutes), "success")
        else:
            flash(_("签退成功！服务 %(duration)s，当天超过 8 小时，待协调员审核。", duration=duration),
                  "success")
        return redirect(url_for(".my_hours"))

    return form_view(CodeIn(), "hours/checkin.html", done, **context)


# --- manual records and the volunteer's hours ---------------------------------------------------------


def _local_input(value: datetime) -> str:
    """The value a datetime-local input shows: the town's wall-clock time, to the minute."""
    return value.astimezone(local_zone()).strftime("%Y-%m-%dT%H:%M")


@bp.route("/claims/<int:claim_id>/hours/new", methods=["GET", "POST"])
@role_required(Role.VOLUNTEER)
def manual_record(claim_id: int):
    """补录: a record for time the volunteer served but could not check in for; it waits for review."""
    claim = get_claim(claim_id, viewer=current_user)
    if claim.volunteer_id != current_user.id:  # the organiser's coordinators may see it, but not file for it
        raise NotFound(what="claim")

    def done(data):
        services.file_manual(claim, data, volunteer=current_user)
        db.session.commit()
        flash(_("补录已提交，等待协调员审核。"), "success")
        return redirect(url_for(".my_hours"))

    project = claim.project
    bounds = {"min": _local_input(project.starts_at), "max": _local_input(min(project.ends_at, utcnow()))}
    # Most 补录 cover the whole project: start from its times rather than two empty date pickers.
    prefill = {"started_at": bounds["min"], "ended_at": bounds["max"]}
    return form_view(ManualRecordIn(), "hours/manual.html", done, claim=claim, project=project, bounds=bounds,
                     prefill=prefill)


class MyHoursArgs(PageArgs):
    status = fields.String(load_default="", validate=validate.OneOf(["", *RecordStatus]))


@bp.get("/me/hours")
@role_required(Role.VOLUNTEER)
def my_hours():
    args = MyHoursArgs().load(request.args)
    page = paginate(services.my_records(current_user, status=args["status"] or None), args["page"],
                    args["per_page"])
    now = utcnow()
    started = (my_claims(current_user, status=ClaimStatus.CONFIRMED)
               .where(Project.starts_at <= now + services.CHECKIN_EARLY).limit(10))
    return render_template("hours/my_hours.html", page=page, status=args["status"], now=now,
                           claims=db.session.scalars(started).all(),
                           approved_minutes=current_user.approved_minutes)


# --- the review queue ------------------------------------------------------------------------------------


class ReviewArgs(PageArgs):
    status = fields.String(load_default="pending", validate=validate.OneOf(["all", *RecordStatus]))
    project_id = Id(load_default=None, allow_none=True)


def _filters(args: dict[str, Any]) -> dict[str, Any]:
    """The queue's query string, to come back to after an action."""
    kept = {"status": args["status"], "project_id": args["project_id"]}
    if args["page"] > 1:
        kept["page"] = args["page"]
    return {k: v for k, v in kept.items() if v is not None}


def _queue_context(args: dict[str, Any]) -> dict[str, Any]:
    stmt = services.review_queue(current_user, status=None if args["status"] == "all" else args["status"],
                                 project_id=args["project_id"])
    page = paginate(stmt, args["page"], args["per_page"])
    now = utcnow()
    projects = db.session.scalars(
        select(Project).where(Project.organization_id == current_user.organization_id,
                              Project.status != ProjectStatus.DRAFT)
        .order_by(Project.starts_at.desc(), Project.id.desc()).limit(200)).all()
    running = [p for p in projects if p.status in (ProjectStatus.PUBLISHED, ProjectStatus.CLOSED)
               and p.starts_at - services.CHECKIN_EARLY <= now < p.ends_at]
    return {"page": page, "status": args["status"], "project_id": args["project_id"], "projects": projects,
            "running": running, "filters": _filters(args), "focus": None}


@bp.get("/coordinate/hours")
@role_required(Role.COORDINATOR)
def review_queue():
    """Records of the organisation's projects, oldest first, pending by default."""
    context = _queue_context(ReviewArgs().load(request.args))
    return render_template("hours/review.html", errors={}, values={}, **context)


@bp.post("/coordinate/hours/review")
@role_required(Role.COORDINATOR)
def review_many():
    """Approve or reject the ticked records, each on its own: one refusal leaves the others done."""
    args = ReviewArgs().load(request.args)

    def done(data):
        results = review_batch(data["ids"], data["action"], data["reason"], reviewer=current_user)
        done_count = sum(r["ok"] for r in results)
        coins = sum(r["coins_issued"] for r in results)
        if data["action"] == "approve":
            waiting = sum(r["status"] == RecordStatus.AWAITING_SECOND_APPROVAL for r in results)
            flash(_("已通过 %(n)s 条记录，发放 %(coins)s 公益币。", n=done_count - waiting, coins=coins), "success")
            if waiting:
                flash(_("另有 %(n)s 条发币较多，已初审，需另一位协调员或管理员复核。", n=waiting), "info")
        else:
            flash(_("已驳回 %(n)s 条记录。", n=done_count), "success")
        refused = Counter(r["code"] for r in results if not r["ok"])
        if refused:
            reasons = [str(BATCH_REFUSALS.get(code, BATCH_REFUSALS["invalid_state"])) % {"n": n}
                       for code, n in refused.items()]
            flash(_("未处理：%(reasons)s。", reasons=_("；").join(reasons)), "error")
        return redirect(url_for(".review_queue", **_filters(args)))

    return form_view(BulkReviewIn(), "hours/review.html", done, **_queue_context(args))


@bp.post("/coordinate/hours/<int:record_id>/<any(approve, reject, revoke):action>")
@role_required(Role.COORDINATOR)
def review_one(record_id: int, action: str):
    """Approve, or reject or revoke with a reason. The coordinator's own records are refused by the service."""
    args = ReviewArgs().load(request.args)
    record = services.get_record(record_id, viewer=current_user)

    def done(data):
        name = record.volunteer.name
        if action == "approve":
            coins = services.approve(record, reviewer=current_user)
            if record.status == RecordStatus.AWAITING_SECOND_APPROVAL:
                message = _("已初审 %(name)s 的 %(duration)s：发币较多，需另一位协调员或管理员复核后发放。",
                            name=name, duration=format_duration(record.minutes))
            else:
                message = _("已通过 %(name)s 的 %(duration)s，发放 %(coins)s 公益币。", name=name,
                            duration=format_duration(record.minutes), coins=coins)
        elif action == "reject":
            services.reject(record, data["reason"], reviewer=current_user)
            message = _("已驳回 %(name)s 的记录。", name=name)
        else:
            clawed = services.revoke(record, data["reason"], reviewer=current_user)
            message = _("已撤销 %(name)s 的 %(duration)s，扣回 %(coins)s 公益币。", name=name,
                        duration=format_duration(record.minutes), coins=clawed)
        db.session.commit()
        flash(message, "success")
        return redirect(url_for(".review_queue", **_filters(args)))

    context = _queue_context(args) | {"focus": record.id}
    return form_view(Schema() if action == "approve" else ReasonIn(), "hours/review.html", done, **context)


# --- wallet ------------------------------------------------------------------------------------------------


@bp.get("/me/wallet")
@role_required(Role.VOLUNTEER)
def wallet():
    args = PageArgs().load(request.args)
    account = find_user_account(current_user.id)
    if account is None:
        page = {"items": [], "page": args["page"], "per_page": args["per_page"], "total": 0}
    else:
        page = paginate(history(account), args["page"], args["per_page"], scalars=False)
    minutes = current_user.approved_minutes
    next_star = next((h for h in STAR_HOURS if minutes < h * 60), None)
    return render_template("hours/wallet.html", figures=wallet_figures(account), page=page, minutes=minutes,
                           star=star_level(minutes), next_star=next_star)


# --- certificates --------------------------------------------------------------------------------------


@bp.route("/me/certificates", methods=["GET", "POST"])
@role_required(Role.VOLUNTEER)
def certificates():
    """Request a 志愿服务证明 for a period; earlier ones are listed below the form."""
    def issue(data):
        certificate = services.issue_certificate(current_user, *local_day_range(data["from_"], data["to"]))
        db.session.commit()
        flash(_("证明已出具，可以打印或保存为 PDF。"), "success")
        return redirect(url_for(".certificate", number=certificate.number))

    args = PageArgs().load(request.args)
    page = paginate(select(Certificate).where(Certificate.volunteer_id == current_user.id)
                    .order_by(Certificate.issued_at.desc(), Certificate.id.desc()), args["page"], args["per_page"])
    today = utcnow().astimezone(local_zone()).date()
    defaults = {"from": today.replace(month=1, day=1).isoformat(), "to": today.isoformat()}
    return form_view(CertificateIn(), "hours/certificates.html", issue, page=page, defaults=defaults,
                     last_day=_last_day)


def _last_day(certificate: Certificate) -> datetime:
    """The period's last day (its end is the midnight after it)."""
    return certificate.period_to - timedelta(seconds=1)


def _certificate_context(status: services.CertificateStatus) -> dict[str, Any]:
    certificate = status.certificate
    verify_url = url_for(".verify_certificate", number=certificate.number, _external=True)
    issuers = ([certificate.organization.name] if certificate.organization
               else list(dict.fromkeys(line["organization"] for line in certificate.lines)))
    return {"certificate": certificate, "revoked_minutes": status.revoked_minutes, "verify_url": verify_url,
            "qr_svg": _qr(verify_url, _("扫码核验证明 %(number)s", number=certificate.number)),
            "issuers": issuers, "last_day": _last_day(certificate)}


@bp.get("/me/certificates/<number>")
@login_required
def certificate(number: str):
    """The printable certificate, for its volunteer only (anyone else: not found)."""
    status = services.verify_certificate(number)
    if status.certificate.volunteer_id != current_user.id:
        raise NotFound(what="certificate")
    return render_template("hours/certificate.html", **_certificate_context(status))


@bp.get("/certificates/<number>")
@limiter.limit(CERTIFICATE_RATE_LIMIT)
def verify_certificate(number: str):
    """Public verification: the certificate as issued, and whether any of its hours were revoked since.
    Rate-limited per address, since numbers could otherwise be probed."""
    status = services.verify_certificate(number)
    return render_template("hours/verify.html", **_certificate_context(status))
