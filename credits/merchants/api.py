"""JSON API for merchants, services, vouchers, redemptions and settlements (SPEC 3.2)."""

from __future__ import annotations

from flask import request
from flask_babel import gettext as _
from flask_login import current_user
from flask_smorest import Blueprint
from marshmallow import ValidationError

from credits.auth.models import Role
from credits.auth.permissions import BEARER, role_required
from credits.auth.schemas import MeOut
from credits.auth.throttle import per_user_limit
from credits.extensions import db
from credits.fields import Text
from credits.merchants import services
from credits.merchants.schemas import (
    MerchantIn,
    MerchantOut,
    PeriodArgs,
    RedeemIn,
    RedemptionOut,
    ServiceIn,
    ServiceOut,
    ServicePatchIn,
    SettlementIn,
    SettlementOut,
    StaffIn,
    StatementLineOut,
    VoucherIn,
    VoucherListArgs,
    VoucherOut,
)
from credits.pagination import PageArgs, page_schema, paginate
from credits.timeutil import local_day_range

blp = Blueprint("merchants_api", __name__, description="Merchants, services, vouchers and redemption")
MAX_IDEMPOTENCY_KEY = 100
IDEMPOTENCY = {"parameters": [{"in": "header", "name": "Idempotency-Key", "required": False,
                               "schema": {"type": "string", "maxLength": MAX_IDEMPOTENCY_KEY}}]}

# Redemption attempts are limited per staff user: a till is not a code-guessing machine.
redeem_rate_limited = per_user_limit("REDEEM_RATE_LIMIT", scope="redeem")


def idempotency_key() -> str | None:
    try:
        key = Text().deserialize(request.headers.get("Idempotency-Key", "").strip())
    except ValidationError as exc:  # the key is stored with the ledger transaction
        raise ValidationError({"Idempotency-Key": exc.messages}) from None
    if len(key) > MAX_IDEMPOTENCY_KEY:  # cut short, two different keys could name the same request
        raise ValidationError({"Idempotency-Key": [_("最多 %(n)s 个字符。", n=MAX_IDEMPOTENCY_KEY)]})
    return key or None


class VoucherPageArgs(PageArgs, VoucherListArgs):
    pass


class PeriodPageArgs(PageArgs, PeriodArgs):
    pass


@blp.get("/merchants")
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_schema(MerchantOut))
def list_merchants(args):
    """Active merchants of the commercial street and their active services."""
    return paginate(services.public_merchants(), args["page"], args["per_page"])


@blp.post("/merchants")
@role_required(Role.COORDINATOR)
@blp.arguments(MerchantIn)
@blp.response(201, MerchantOut)
@blp.doc(security=BEARER)
def create_merchant(data):
    merchant = services.create_merchant(data, actor=current_user)
    db.session.commit()
    return merchant


@blp.post("/merchants/<int:merchant_id>/staff")
@role_required(Role.COORDINATOR)
@blp.arguments(StaffIn)
@blp.response(201, MeOut)
@blp.doc(security=BEARER)
def add_staff(data, merchant_id):
    user = services.add_staff(services.get_merchant(merchant_id), data, actor=current_user)
    db.session.commit()
    return user


@blp.post("/merchants/<int:merchant_id>/services")
@role_required(Role.MERCHANT, Role.COORDINATOR)
@blp.arguments(ServiceIn)
@blp.response(201, ServiceOut)
@blp.doc(security=BEARER)
def create_service(data, merchant_id):
    service = services.create_service(services.get_merchant(merchant_id), data, actor=current_user)
    db.session.commit()
    return service


@blp.patch("/services/<int:service_id>")
@role_required(Role.MERCHANT, Role.COORDINATOR)
@blp.arguments(ServicePatchIn)
@blp.response(200, ServiceOut)
@blp.doc(security=BEARER)
def update_service(changes, service_id):
    service = services.update_service(services.get_service(service_id), changes, actor=current_user)
    db.session.commit()
    return service


@blp.post("/vouchers")
@role_required(Role.VOLUNTEER)
@blp.arguments(VoucherIn)
@blp.response(201, VoucherOut)
@blp.doc(security=BEARER, **IDEMPOTENCY)
def take_voucher(data):
    """Hold the service's price in escrow and get a voucher; a retry with the same Idempotency-Key returns it."""
    voucher = services.take_voucher(services.get_service(data["service_id"]), volunteer=current_user,
                                    idempotency_key=idempotency_key())
    db.session.commit()
    return voucher


@blp.get("/me/vouchers")
@role_required(Role.VOLUNTEER)
@blp.arguments(VoucherPageArgs, location="query")
@blp.response(200, page_schema(VoucherOut))
@blp.doc(security=BEARER)
def my_vouchers(args):
    return paginate(services.my_vouchers(current_user, status=args.get("status")), args["page"], args["per_page"])


@blp.post("/vouchers/<int:voucher_id>/cancel")
@role_required(Role.VOLUNTEER)
@blp.response(200, VoucherOut)
@blp.doc(security=BEARER)
def cancel_voucher(voucher_id):
    voucher = services.cancel_voucher(services.get_own_voucher(voucher_id, volunteer=current_user),
                                      volunteer=current_user)
    db.session.commit()
    return voucher


@blp.post("/redemptions")
@role_required(Role.MERCHANT)
@redeem_rate_limited
@blp.arguments(RedeemIn)
@blp.response(200, RedemptionOut)
@blp.doc(security=BEARER, **IDEMPOTENCY)
def redeem(data):
    """Redeem a voucher by its code (case and hyphens ignored); exactly once."""
    voucher = services.redeem(services.find_voucher(data["code"]), staff=current_user,
                              idempotency_key=idempotency_key())
    db.session.commit()
    return voucher


@blp.get("/merchants/<int:merchant_id>/redemptions")
@role_required(Role.MERCHANT, Role.COORDINATOR)
@blp.arguments(PeriodPageArgs, location="query")
@blp.response(200, page_schema(RedemptionOut))
@blp.doc(security=BEARER)
def merchant_redemptions(args, merchant_id):
    period = local_day_range(args["from_"], args["to"]) if "from_" in args and "to" in args else (None, None)
    stmt = services.redemptions(services.get_merchant(merchant_id), viewer=current_user,
                                period_from=period[0], period_to=period[1])
    return paginate(stmt, args["page"], args["per_page"])


@blp.get("/merchants/<int:merchant_id>/statement")
@role_required(Role.MERCHANT, Role.COORDINATOR, Role.ADMIN)
@blp.arguments(SettlementIn, location="query")
@blp.response(200, StatementLineOut(many=True))
@blp.doc(security=BEARER)
def merchant_statement(args, merchant_id):
    """Count and coins per service redeemed in a period."""
    merchant = services.get_merchant(merchant_id)
    if not current_user.has_role(Role.ADMIN):
        services.require_staff_or_coordinator(merchant.id, current_user)
    return services.statement(merchant, *local_day_range(args["from_"], args["to"]))


@blp.post("/merchants/<int:merchant_id>/settlements")
@role_required(Role.ADMIN)
@blp.arguments(SettlementIn)
@blp.response(201, SettlementOut)
@blp.doc(security=BEARER)
def settle(data, merchant_id):
    """Settle the shop's unsettled redemptions of a period (dates inclusive)."""
    settlement = services.settle(services.get_merchant(merchant_id), *local_day_range(data["from_"], data["to"]),
                                 actor=current_user)
    db.session.commit()
    return settlement
