"""HTML pages for merchants: the volunteer's browsing, vouchers and counter QR; the shop's redeem screen, day list,
statement, CSV export and services; the coordinator's onboarding; the admin's settlement.

Every page calls the same service functions as the JSON API (credits.merchants.api), so the two cannot drift apart.
"""

from __future__ import annotations

import secrets
from datetime import date, timedelta
from typing import Any

import segno
from flask import Blueprint, flash, jsonify, make_response, redirect, render_template, request, url_for
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from marshmallow import EXCLUDE, Schema, ValidationError, validate
from sqlalchemy import select

from credits.auth.models import Role, User
from credits.auth.permissions import role_required
from credits.errors import DomainError, Forbidden, NotFound, Unauthorized, localize
from credits.extensions import db
from credits.fields import Text
from credits.ledger.services import find_user_account, wallet_figures
from credits.merchants import services
from credits.merchants.api import redeem_rate_limited
from credits.merchants.models import Merchant, MerchantCategory, Settlement, Voucher
from credits.merchants.schemas import MerchantIn, RedeemIn, ServiceIn, ServicePatchIn, SettlementIn, StaffIn
from credits.pagination import PageArgs, paginate
from credits.reports.exports import csv_response
from credits.share.views import public_merchant
from credits.timeutil import LocalDate, local_day_range, local_zone, utcnow
from credits.web.forms import form_payload, form_view

bp = Blueprint("merchants", __name__, template_folder="templates")

VOUCHER_STATUS_LABELS = {"issued": _l("待使用"), "redeemed": _l("已使用"), "cancelled": _l("已取消"),
                         "expired": _l("已过期")}
CATEGORY_LABELS = {MerchantCategory.CAR_WASH: _l("洗车"), MerchantCategory.EARLY_EDUCATION: _l("早教"),
                   MerchantCategory.CHILDREN_PHOTOGRAPHY: _l("儿童摄影"),
                   MerchantCategory.HAIR_BEAUTY: _l("美容美发"), MerchantCategory.OTHER: _l("其他")}


class KeyIn(Schema):
    """A form's Idempotency-Key: a random value put in the page, so a double submit is one action."""

    idempotency_key = Text(load_default=None, validate=validate.Length(max=100))


class RedeemConfirmIn(RedeemIn, KeyIn):
    pass


@bp.context_processor
def helpers() -> dict[str, Any]:
    return {"voucher_status_labels": VOUCHER_STATUS_LABELS, "category_labels": CATEGORY_LABELS,
            "shown_status": services.shown_status, "group_code": services.group_code,
            "mask_name": services.mask_name, "mask_phone": services.mask_phone, "new_key": _new_key}


def _new_key() -> str:
    return secrets.token_urlsafe(16)


def _today() -> date:
    return utcnow().astimezone(local_zone()).date()


# --- volunteers: browse, take, list, show ---------------------------------------------------------------


def _browse_context() -> dict[str, Any]:
    merchants = db.session.scalars(services.public_merchants().limit(200)).unique().all()
    balance = None
    if current_user.is_authenticated and current_user.has_role(Role.VOLUNTEER):
        balance = wallet_figures(find_user_account(current_user.id))["balance"]
    return {"merchants": merchants, "balance": balance}


@bp.get("/merchants")
def browse():
    """Shops of the commercial street and their services; a volunteer sees what their balance affords."""
    return render_template("merchants/browse.html", errors={}, values={}, **_browse_context())


@bp.get("/merchants/<int:merchant_id>")
def detail(merchant_id: int):
    """One shop and its services: what its counter poster's QR opens, and a link that shares as a card."""
    context = {**_browse_context(), "merchants": [public_merchant(merchant_id)]}
    return render_template("merchants/browse.html", errors={}, values={}, single=context["merchants"][0], **context)


@bp.post("/merchants/services/<int:service_id>/voucher")
@role_required(Role.VOLUNTEER)
def take_voucher(service_id: int):
    service = services.get_service(service_id)

    def done(data):
        voucher = services.take_voucher(service, volunteer=current_user, idempotency_key=data["idempotency_key"])
        db.session.commit()
        flash(_("兑换成功！到店时出示下面的二维码或券码。"), "success")
        return redirect(url_for(".voucher", voucher_id=voucher.id))

    return form_view(KeyIn(), "merchants/browse.html", done, failed_service=service.id, **_browse_context())


@bp.get("/me/vouchers")
@role_required(Role.VOLUNTEER)
def my_vouchers():
    args = PageArgs().load(request.args)
    page = paginate(services.my_vouchers(current_user), args["page"], args["per_page"])
    return render_template("merchants/my_vouchers.html", page=page)


@bp.post("/me/vouchers/<int:voucher_id>/cancel")
@role_required(Role.VOLUNTEER)
def cancel_voucher(voucher_id: int):
    voucher = services.get_own_voucher(voucher_id, volunteer=current_user)
    try:
        services.cancel_voucher(voucher, volunteer=current_user)
        db.session.commit()
        flash(_("兑换券已取消，%(coins)s 公益币已退回。", coins=voucher.coins), "success")
    except DomainError as exc:
        if exc.status != 409:
            raise
        db.session.rollback()
        flash(str(exc.message), "error")
    return redirect(url_for(".my_vouchers"))


@bp.get("/me/vouchers/<int:voucher_id>")
@role_required(Role.VOLUNTEER)
def voucher(voucher_id: int):
    """The voucher to show at the counter: a big QR of the plain code and the grouped code."""
    voucher = services.get_own_voucher(voucher_id, volunteer=current_user)
    qr_svg = segno.make_qr(voucher.code, error="m").svg_inline(
        scale=1, omitsize=True, title=_("兑换券二维码"), svgclass="qr-svg")
    return render_template("merchants/voucher.html", voucher=voucher, qr_svg=qr_svg)


@bp.get("/me/vouchers/<int:voucher_id>/status")
def voucher_status(voucher_id: int):
    """The voucher page's feed (voucher.js polls it while the voucher is unused): {status, label, redeemed_at}.
    Only the voucher's owner; refusals are JSON (401, 403, 404 as for a missing voucher), not a sign-in page."""
    try:
        if not current_user.is_authenticated:
            raise Unauthorized()
        if not current_user.has_role(Role.VOLUNTEER):
            raise Forbidden()
        voucher = services.get_own_voucher(voucher_id, volunteer=current_user)
    except DomainError as exc:
        body, status = jsonify(error={"code": exc.code, "message": str(exc.message)}), exc.status
    else:
        shown = services.shown_status(voucher)
        redeemed_at = voucher.redeemed_at and format_datetime(voucher.redeemed_at, _("yyyy年M月d日 HH:mm"))
        body, status = jsonify(status=shown, label=str(VOUCHER_STATUS_LABELS[shown]), redeemed_at=redeemed_at), 200
    response = make_response(body, status)
    response.headers["Cache-Control"] = "no-store"
    return response


# --- merchant staff: redeem, day list, statement, services ------------------------------------------------


def _my_shop() -> Merchant:
    if current_user.merchant_id is None:
        raise services.Forbidden()
    return services.get_merchant(current_user.merchant_id)


def _redeem_page(shop: Merchant, *, step: str = "lookup", voucher: Voucher | None = None, code: str = "",
                 error: str | None = None, status: int = 200):
    return render_template("merchants/redeem.html", shop=shop, step=step, voucher=voucher, code=code,
                           error=error), status


def _redeem_form(schema: Schema, action):
    """Validate the posted code with the schema and run `action`; refusals are shown on the page."""
    shop = _my_shop()
    code = request.form.get("code", "")
    try:
        return action(shop, schema.load(form_payload(schema)))
    except ValidationError as exc:
        db.session.rollback()
        messages = localize(exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages})
        return _redeem_page(shop, code=code, error=" ".join(sum(messages.values(), [])), status=422)
    except DomainError as exc:
        if exc.status not in (404, 409):
            raise
        db.session.rollback()
        message = _("没有找到这张兑换券，请核对券码。") if exc.code == "not_found" else str(exc.message)
        return _redeem_page(shop, code=code, error=message, status=exc.status)


@bp.get("/shop/redeem")
@role_required(Role.MERCHANT)
def redeem_screen():
    return _redeem_page(_my_shop())


@bp.post("/shop/redeem")
@role_required(Role.MERCHANT)
@redeem_rate_limited
def redeem_lookup():
    """Step 1: the voucher behind the code, with the refusals redeeming it would meet; nothing changes."""
    def show(shop, data):
        voucher = services.preview_redeem(services.find_voucher(data["code"]), staff=current_user)
        return _redeem_page(shop, step="confirm", voucher=voucher, code=voucher.code)

    return _redeem_form(RedeemIn(), show)


@bp.post("/shop/redeem/confirm")
@role_required(Role.MERCHANT)
@redeem_rate_limited
def redeem_confirm():
    """Step 2: redeem, exactly once; a double tap with the same key returns the first answer."""
    def confirm(shop, data):
        voucher = services.redeem(services.find_voucher(data["code"]), staff=current_user,
                                  idempotency_key=data["idempotency_key"])
        db.session.commit()
        flash(_("核销成功：%(service)s，%(coins)s 公益币（%(name)s）。", service=voucher.service.name,
                coins=voucher.coins, name=services.mask_name(voucher.volunteer.name)), "success")
        return redirect(url_for(".redeem_screen"))

    return _redeem_form(RedeemConfirmIn(), confirm)


class PeriodIn(Schema):
    from_ = LocalDate(data_key="from", load_default=None)
    to = LocalDate(load_default=None)


def _period() -> tuple[date, date]:
    """The statement's period from the query string (dates inclusive); this month by default."""
    try:
        args = PeriodIn().load({k: v for k, v in request.args.items() if k in ("from", "to") and v})
    except ValidationError:
        args = {"from_": None, "to": None}
    today = _today()
    first, last = args["from_"] or today.replace(day=1), args["to"] or today
    return (first, last) if first <= last else (last, first)


@bp.get("/shop")
@role_required(Role.MERCHANT)
def shop():
    """Today's redemptions and a statement for any period."""
    shop = _my_shop()
    today = _today()
    day = local_day_range(today, today)
    args = PageArgs(unknown=EXCLUDE).load(request.args)
    todays = paginate(services.redemptions(shop, viewer=current_user, period_from=day[0], period_to=day[1]),
                      args["page"], args["per_page"])
    today_lines = services.statement(shop, *day)
    first, last = _period()
    lines = services.statement(shop, *local_day_range(first, last))
    return render_template("merchants/shop.html", shop=shop, todays=todays, lines=lines, first=first, last=last,
                           today_count=sum(line.count for line in today_lines),
                           today_coins=sum(line.coins for line in today_lines),
                           total_count=sum(line.count for line in lines),
                           total_coins=sum(line.coins for line in lines))


@bp.get("/shop/statement.csv")
@role_required(Role.MERCHANT)
def statement_csv():
    """The period's redemptions, one row each, as a CSV Excel opens (UTF-8 with a BOM), streamed."""
    shop = _my_shop()
    first, last = _period()
    stmt = services.redemptions(shop, viewer=current_user, period_from=local_day_range(first, last)[0],
                                period_to=local_day_range(first, last)[1])
    header = [_("核销时间"), _("服务"), _("公益币"), _("志愿者"), _("手机")]

    def rows():
        for voucher in db.session.scalars(stmt.execution_options(yield_per=200)):
            yield (voucher.redeemed_at, voucher.service.name, voucher.coins,
                   services.mask_name(voucher.volunteer.name), services.mask_phone(voucher.volunteer.phone))

    # The one CSV writer every export uses: a service named "=HYPERLINK(…)" stays text.
    return csv_response(f"statement-{shop.id}-{first.isoformat()}-{last.isoformat()}", header, rows)


@bp.route("/shop/services", methods=["GET", "POST"])
@role_required(Role.MERCHANT)
def shop_services():
    """The shop's services, and a form to add one."""
    shop = _my_shop()

    def create(data):
        service = services.create_service(shop, data, actor=current_user)
        db.session.commit()
        flash(_("已添加服务：%(name)s。", name=service.name), "success")
        return redirect(url_for(".shop_services"))

    return form_view(ServiceIn(), "merchants/shop_services.html", create, shop=shop, editing=None)


@bp.post("/shop/services/<int:service_id>")
@role_required(Role.MERCHANT)
def edit_service(service_id: int):
    shop = _my_shop()
    service = services.get_service(service_id)
    if service.merchant_id != shop.id:
        raise NotFound(what="service")

    def update(data):
        services.update_service(service, data, actor=current_user)
        db.session.commit()
        flash(_("已保存：%(name)s。", name=service.name), "success")
        return redirect(url_for(".shop_services"))

    return form_view(ServicePatchIn(only=("price", "daily_quota", "active")), "merchants/shop_services.html",
                     update, shop=shop, editing=service.id)


# --- coordinators: onboarding --------------------------------------------------------------------------


@bp.route("/coordinate/merchants", methods=["GET", "POST"])
@role_required(Role.COORDINATOR)
def coordinate():
    def create(data):
        merchant = services.create_merchant(data, actor=current_user)
        db.session.commit()
        flash(_("已添加商户：%(name)s。现在可以为它开设店员账号和服务。", name=merchant.name), "success")
        return redirect(url_for(".coordinate_merchant", merchant_id=merchant.id))

    args = PageArgs(unknown=EXCLUDE).load(request.args)
    return form_view(MerchantIn(), "merchants/coordinate.html", create,
                     page=paginate(services.all_merchants(), args["page"], args["per_page"]),
                     categories=list(MerchantCategory))


def _merchant_context(merchant: Merchant) -> dict[str, Any]:
    staff = db.session.scalars(select(User).where(User.merchant_id == merchant.id).order_by(User.id)).all()
    return {"merchant": merchant, "staff": staff}


@bp.get("/coordinate/merchants/<int:merchant_id>")
@role_required(Role.COORDINATOR)
def coordinate_merchant(merchant_id: int):
    merchant = services.get_merchant(merchant_id)
    return render_template("merchants/coordinate_merchant.html", errors={}, values={}, form=None,
                           **_merchant_context(merchant))


@bp.post("/coordinate/merchants/<int:merchant_id>/staff")
@role_required(Role.COORDINATOR)
def add_staff(merchant_id: int):
    merchant = services.get_merchant(merchant_id)

    def create(data):
        user = services.add_staff(merchant, data, actor=current_user)
        db.session.commit()
        flash(_("已为 %(shop)s 开设店员账号：%(name)s。", shop=merchant.name, name=user.name), "success")
        return redirect(url_for(".coordinate_merchant", merchant_id=merchant.id))

    return form_view(StaffIn(), "merchants/coordinate_merchant.html", create, form="staff",
                     **_merchant_context(merchant))


@bp.post("/coordinate/merchants/<int:merchant_id>/services")
@role_required(Role.COORDINATOR)
def add_service(merchant_id: int):
    merchant = services.get_merchant(merchant_id)

    def create(data):
        service = services.create_service(merchant, data, actor=current_user)
        db.session.commit()
        flash(_("已添加服务：%(name)s。", name=service.name), "success")
        return redirect(url_for(".coordinate_merchant", merchant_id=merchant.id))

    return form_view(ServiceIn(), "merchants/coordinate_merchant.html", create, form="service",
                     **_merchant_context(merchant))


# --- admins: settlement -----------------------------------------------------------------------------------


@bp.get("/admin/merchants")
@role_required(Role.ADMIN)
def admin_merchants():
    args = PageArgs(unknown=EXCLUDE).load(request.args)
    return render_template("merchants/admin_merchants.html",
                           page=paginate(services.all_merchants(), args["page"], args["per_page"]))


@bp.route("/admin/merchants/<int:merchant_id>/settle", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def settle(merchant_id: int):
    """Settle a period (dates inclusive); the statement of the settlement just made is shown, then the past ones."""
    merchant = services.get_merchant(merchant_id)

    def done(data):
        settlement = services.settle(merchant, *local_day_range(data["from_"], data["to"]), actor=current_user)
        db.session.commit()
        flash(_("结算完成：%(n)s 张兑换券，%(coins)s 公益币。", n=settlement.vouchers, coins=settlement.coins),
              "success")
        return redirect(url_for(".settle", merchant_id=merchant.id, shown=settlement.id))

    past = db.session.scalars(select(Settlement).where(Settlement.merchant_id == merchant.id)
                              .order_by(Settlement.id.desc()).limit(100)).all()
    shown = next((s for s in past if s.id == request.args.get("shown", type=int)), None)
    today = _today()
    defaults = {"from": today.replace(day=1).isoformat(), "to": today.isoformat()}
    return form_view(SettlementIn(), "merchants/settle.html", done, merchant=merchant, past=past, shown=shown,
                     defaults=defaults, one_second=timedelta(seconds=1))
