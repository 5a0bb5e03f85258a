"""Merchants, services and vouchers (SPEC 2.4). Coins move only through the ledger: taking a voucher holds its
price in escrow, redeeming pays the merchant, cancelling or expiry releases it back."""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from credits.auth.audit import record_event
from credits.auth.models import Role, User
from credits.auth.services import create_user
from credits.database import lock
from credits.errors import DomainError, Forbidden, IdempotencyConflict, InvalidState, NotFound
from credits.extensions import db
from credits.ledger import memos
from credits.ledger.models import SystemAccount, TxKind
from credits.ledger.services import merchant_account, system_account, transfer, user_account
from credits.merchants.models import Merchant, Service, ServiceDay, Settlement, Voucher, VoucherStatus
from credits.notifications.services import notify
from credits.settings.services import get_policy
from credits.timeutil import local_zone, utcnow

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 12  # 60 random bits
_READ_AS = str.maketrans({"I": "1", "L": "1", "O": "0"})
_DASHES = frozenset("\u2212\u2043")  # the minus sign and the hyphen bullet: typed as dashes, not filed as 'Pd'



class ServiceInactive(DomainError):
    code, message = "service_inactive", _l("该服务暂不可兑换。")


class QuotaExhausted(DomainError):
    code, message = "quota_exhausted", _l("该服务今天的兑换名额已满，明天再来吧。")


class VoucherRedeemed(DomainError):
    code, message = "voucher_redeemed", _l("这张兑换券已经使用过了。")


class VoucherExpired(DomainError):
    code, message = "voucher_expired", _l("这张兑换券已过期。")


class VoucherCancelled(DomainError):
    code, message = "voucher_cancelled", _l("这张兑换券已取消。")


class WrongMerchant(DomainError):
    code, message = "wrong_merchant", _l("这张兑换券不是本店的。")


class NameTaken(DomainError):
    code, message = "name_taken", _l("已有同名商户。")


VOUCHER_REFUSALS = {VoucherStatus.REDEEMED: VoucherRedeemed, VoucherStatus.EXPIRED: VoucherExpired,
                    VoucherStatus.CANCELLED: VoucherCancelled}


# --- codes and masking -------------------------------------------------------------------------------


def new_code() -> str:
    return "".join(secrets.choice(CROCKFORD) for _ in range(CODE_LENGTH))


def group_code(code: str) -> str:
    """7K3M-Q9XD-2HRT: easier to read out at a counter."""
    return "-".join(code[i:i + 4] for i in range(0, len(code), 4))


def normalize_code(text: str) -> str | None:
    """A typed code as stored: case, spaces and dashes of every kind (-, —, –, ‑, －, −) ignored, full-width
    characters read as ASCII, I/L read as 1 and O as 0; None if it cannot be a code at all."""
    text = unicodedata.normalize("NFKC", str(text))
    code = "".join(ch for ch in text if not (ch.isspace() or ch in _DASHES or unicodedata.category(ch) == "Pd"))
    code = code.upper().translate(_READ_AS)
    return code if len(code) == CODE_LENGTH and all(ch in CROCKFORD for ch in code) else None


def mask_name(name: str) -> str:
    """张*明, 张*: merchants see no more of a volunteer than they need."""
    if len(name) <= 1:
        return name
    return name[0] + "*" + (name[-1] if len(name) > 2 else "")


def mask_phone(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:]


# --- merchants and services --------------------------------------------------------------------------


def is_staff(merchant_id: int, user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.has_role(Role.MERCHANT)
                and user.merchant_id == merchant_id)


def require_coordinator(actor: User) -> None:
    if not actor.has_role(Role.COORDINATOR):
        raise Forbidden()


def require_staff_or_coordinator(merchant_id: int, actor: User) -> None:
    if not (is_staff(merchant_id, actor) or actor.has_role(Role.COORDINATOR)):
        raise Forbidden()


def get_merchant(merchant_id: int) -> Merchant:
    merchant = db.session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound(what="merchant")
    return merchant


def get_service(service_id: int) -> Service:
    service = db.session.get(Service, service_id)
    if service is None:
        raise NotFound(what="service")
    return service


def create_merchant(data: dict[str, Any], *, actor: User) -> Merchant:
    """A coordinator onboards a shop of the commercial street."""
    require_coordinator(actor)
    if db.session.scalar(select(Merchant.id).where(Merchant.name == data["name"])) is not None:
        raise NameTaken()
    merchant = Merchant(**data)
    db.session.add(merchant)
    db.session.flush()
    record_event("merchant.create", merchant, actor=actor, details={"name": merchant.name})
    return merchant


def add_staff(merchant: Merchant, data: dict[str, Any], *, actor: User) -> User:
    """A staff account for the shop (role merchant). Raises PhoneTaken."""
    require_coordinator(actor)
    user = create_user(phone=data["phone"], name=data["name"], password=data["password"], roles=[Role.MERCHANT],
                       actor=actor)
    user.merchant_id = merchant.id
    db.session.flush()
    record_event("merchant.add_staff", merchant, actor=actor, details={"user_id": user.id})
    return user


def create_service(merchant: Merchant, data: dict[str, Any], *, actor: User) -> Service:
    require_staff_or_coordinator(merchant.id, actor)
    service = Service(merchant_id=merchant.id, **data)
    db.session.add(service)
    db.session.flush()
    record_event("service.create", service, actor=actor, details={"name": service.name, "price": service.price})
    return service


def update_service(service: Service, changes: dict[str, Any], *, actor: User) -> Service:
    """Price, quota, texts, active flag. Outstanding vouchers keep the price they were taken at."""
    require_staff_or_coordinator(service.merchant_id, actor)
    for key, value in changes.items():
        setattr(service, key, value)
    db.session.flush()
    record_event("service.update", service, actor=actor, details=changes)
    return service


def public_merchants():
    """Active merchants, for browsing."""
    return select(Merchant).where(Merchant.active.is_(True)).order_by(Merchant.id)


# --- vouchers ----------------------------------------------------------------------------------------


def _local_day(moment: datetime):
    return moment.astimezone(local_zone()).date()


def _take_quota(service: Service, day) -> None:
    """Count one voucher against the day's quota with a guarded UPDATE; the row is created first if missing."""
    if service.daily_quota is None:
        return
    if db.session.get(ServiceDay, (service.id, day)) is None:
        try:
            with db.session.begin_nested():
                db.session.add(ServiceDay(service_id=service.id, day=day, taken=0))
        except IntegrityError:
            pass  # a concurrent voucher created it
    taken = db.session.execute(
        update(ServiceDay).where(ServiceDay.service_id == service.id, ServiceDay.day == day,
                                 ServiceDay.taken < service.daily_quota)
        .values(taken=ServiceDay.taken + 1).execution_options(synchronize_session=False)).rowcount
    if taken != 1:
        raise QuotaExhausted()


def _return_quota(voucher: Voucher) -> None:
    db.session.execute(update(ServiceDay).where(ServiceDay.service_id == voucher.service_id,
                                                ServiceDay.day == voucher.day, ServiceDay.taken > 0)
                       .values(taken=ServiceDay.taken - 1).execution_options(synchronize_session=False))


def take_voucher(service: Service, *, volunteer: User, idempotency_key: str | None = None) -> Voucher:
    """Hold the service's price in escrow and issue a voucher. A retry with the same Idempotency-Key returns the
    first voucher. Raises ServiceInactive, QuotaExhausted, InsufficientBalance, IdempotencyConflict."""
    if not volunteer.has_role(Role.VOLUNTEER):
        raise Forbidden()
    issue_key = f"{volunteer.id}:{idempotency_key}" if idempotency_key else None
    if issue_key and (first := _voucher_by(Voucher.issue_key, issue_key)) is not None:
        if first.service_id != service.id:
            raise IdempotencyConflict()
        return first
    if not (service.active and service.merchant.active):
        raise ServiceInactive()
    now = utcnow()
    _expire_due_of(volunteer, now)  # lazily: coins of the volunteer's expired vouchers come back first
    day = _local_day(now)
    voucher = Voucher(code=new_code(), volunteer_id=volunteer.id, service_id=service.id,
                      merchant_id=service.merchant_id, coins=service.price, day=day, issued_at=now,
                      expires_at=now + timedelta(days=get_policy()["voucher_ttl_days"]), issue_key=issue_key)
    try:
        # One savepoint for the quota place, the voucher and the hold: a refusal of any leaves none of them.
        with db.session.begin_nested():
            _take_quota(service, day)
            db.session.add(voucher)
            db.session.flush()
            transfer(TxKind.HOLD, user_account(volunteer.id), system_account(SystemAccount.ESCROW), voucher.coins,
                     actor=volunteer, memo=memos.write(memos.HELD, service=f"{service.merchant.name} {service.name}"),
                     ref=("voucher", voucher.id), idempotency_key=f"voucher:{voucher.id}:hold")
    except IntegrityError:
        # The same key from a concurrent retry committed first (a code collision at 60 bits is not a concern).
        first = _voucher_by(Voucher.issue_key, issue_key) if issue_key else None
        if first is None:
            raise
        if first.service_id != service.id:
            raise IdempotencyConflict() from None
        return first
    record_event("voucher.issue", voucher, actor=volunteer, details={"service_id": service.id,
                                                                     "coins": voucher.coins})
    return voucher


def _voucher_by(column, value) -> Voucher | None:
    return db.session.scalars(select(Voucher).where(column == value)).one_or_none()


def expire_if_due(voucher: Voucher, now: datetime | None = None) -> bool:
    """Expire an issued voucher past its time and return its coins. Returns whether it expired now."""
    now = now or utcnow()
    if voucher.status != VoucherStatus.ISSUED or voucher.expires_at > now:
        return False
    lock(voucher)
    if voucher.status != VoucherStatus.ISSUED:
        return False
    _close(voucher, VoucherStatus.EXPIRED, actor=None)
    return True


def _close(voucher: Voucher, status: VoucherStatus, *, actor: User | None) -> None:
    """Cancel or expire (the caller holds the lock): coins back from escrow, the quota place back."""
    voucher.status = status
    voucher.closed_at = utcnow()
    transfer(TxKind.RELEASE, system_account(SystemAccount.ESCROW), user_account(voucher.volunteer_id),
             voucher.coins, actor=actor, ref=("voucher", voucher.id), idempotency_key=f"voucher:{voucher.id}:release",
             memo=memos.CANCELLED if status == VoucherStatus.CANCELLED else memos.LAPSED)
    _return_quota(voucher)
    db.session.flush()
    record_event(f"voucher.{status}", voucher, actor=actor)


def get_own_voucher(voucher_id: int, *, volunteer: User) -> Voucher:
    """A voucher of this volunteer; anyone else's answers NotFound like a missing one."""
    voucher = db.session.get(Voucher, voucher_id)
    if voucher is None or voucher.volunteer_id != volunteer.id:
        raise NotFound(what="voucher")
    return voucher


def all_merchants():
    """Every merchant, active or not, for coordinators and admins."""
    return select(Merchant).order_by(Merchant.id)


def cancel_voucher(voucher: Voucher, *, volunteer: User) -> Voucher:
    """The volunteer cancels an unused voucher; its coins come back."""
    if voucher.volunteer_id != volunteer.id:
        raise NotFound(what="voucher")
    lock(voucher)
    if voucher.status != VoucherStatus.ISSUED:
        raise VOUCHER_REFUSALS[voucher.status]()
    if voucher.expires_at <= utcnow():
        _close(voucher, VoucherStatus.EXPIRED, actor=None)
        return voucher
    _close(voucher, VoucherStatus.CANCELLED, actor=volunteer)
    return voucher


def find_voucher(code: str) -> Voucher:
    """The voucher with this code. Unknown and malformed codes answer the same NotFound, so codes cannot be
    probed."""
    normalized = normalize_code(code)
    voucher = _voucher_by(Voucher.code, normalized) if normalized else None
    if voucher is None:
        raise NotFound(what="voucher")
    return voucher


def preview_redeem(voucher: Voucher, *, staff: User) -> Voucher:
    """What the till shows before staff confirm: the same refusals as `redeem`, changing nothing.
    Raises Forbidden, WrongMerchant, VoucherRedeemed, VoucherExpired, VoucherCancelled."""
    if not staff.has_role(Role.MERCHANT) or staff.merchant_id is None:
        raise Forbidden()
    if voucher.merchant_id != staff.merchant_id:
        raise WrongMerchant()
    status = VoucherStatus(shown_status(voucher))
    if status != VoucherStatus.ISSUED:
        raise VOUCHER_REFUSALS[status]()
    return voucher


def redeem(voucher: Voucher, *, staff: User, idempotency_key: str | None = None) -> Voucher:
    """Staff of the voucher's shop redeem it: escrow pays the merchant. Exactly once, even when two tills scan it
    at the same instant (the row lock makes the second see `redeemed`); a retry with the same Idempotency-Key
    returns the first answer. Raises WrongMerchant, VoucherRedeemed, VoucherExpired, VoucherCancelled."""
    if not staff.has_role(Role.MERCHANT) or staff.merchant_id is None:
        raise Forbidden()
    if voucher.merchant_id != staff.merchant_id:
        raise WrongMerchant()
    redeem_key = f"{staff.id}:{idempotency_key}" if idempotency_key else None
    lock(voucher)
    if redeem_key and voucher.redeem_key == redeem_key:
        return voucher
    if redeem_key and _voucher_by(Voucher.redeem_key, redeem_key) is not None:
        raise IdempotencyConflict()  # the key already redeemed another code
    if voucher.status != VoucherStatus.ISSUED:
        raise VOUCHER_REFUSALS[voucher.status]()
    if voucher.expires_at <= utcnow():
        raise VoucherExpired()
    if redeem_key:
        try:  # a concurrent redemption of another code with the same key may hold it uncommitted
            with db.session.begin_nested():
                voucher.redeem_key = redeem_key
                db.session.flush()
        except IntegrityError:
            raise IdempotencyConflict() from None
    voucher.status = VoucherStatus.REDEEMED
    voucher.redeemed_at = utcnow()
    voucher.redeemed_by_id = staff.id
    transfer(TxKind.REDEEM, system_account(SystemAccount.ESCROW), merchant_account(voucher.merchant_id),
             voucher.coins, actor=staff, ref=("voucher", voucher.id), idempotency_key=f"voucher:{voucher.id}:redeem",
             memo=memos.write(memos.REDEEMED, service=voucher.service.name))
    db.session.flush()
    notify(voucher.volunteer, "redemption", link="/me/vouchers", merchant=voucher.merchant.name,
           service=voucher.service.name, coins=voucher.coins)
    record_event("voucher.redeem", voucher, actor=staff)
    return voucher


def _expire_due_of(volunteer: User, now: datetime) -> None:
    for voucher in db.session.scalars(select(Voucher).where(
            Voucher.volunteer_id == volunteer.id, Voucher.status == VoucherStatus.ISSUED, Voucher.expires_at <= now)):
        expire_if_due(voucher, now)


def shown_status(voucher: Voucher) -> str:
    """The status a person should see: an issued voucher past its time is expired even before the job runs."""
    if voucher.status == VoucherStatus.ISSUED and voucher.expires_at <= utcnow():
        return VoucherStatus.EXPIRED.value
    return voucher.status


def expire_vouchers(now: datetime) -> dict[str, int]:
    """Expire every issued voucher past its time (for `flask credits expire`)."""
    due = db.session.scalars(select(Voucher).where(Voucher.status == VoucherStatus.ISSUED,
                                                   Voucher.expires_at <= now).order_by(Voucher.id)).all()
    expired = sum(expire_if_due(voucher, now) for voucher in due)
    return {"expired_vouchers": expired}


def my_vouchers(volunteer: User, *, status: str | None = None):
    stmt = select(Voucher).where(Voucher.volunteer_id == volunteer.id)
    if status:
        stmt = stmt.where(Voucher.status == status)
    return stmt.order_by(Voucher.issued_at.desc(), Voucher.id.desc())


def redemptions(merchant: Merchant, *, viewer: User, period_from: datetime | None = None,
                period_to: datetime | None = None):
    """The ordered query of a shop's redeemed vouchers in a period, for its staff and coordinators."""
    require_staff_or_coordinator(merchant.id, viewer)
    stmt = select(Voucher).where(Voucher.merchant_id == merchant.id, Voucher.status == VoucherStatus.REDEEMED)
    if period_from:
        stmt = stmt.where(Voucher.redeemed_at >= period_from)
    if period_to:
        stmt = stmt.where(Voucher.redeemed_at < period_to)
    return stmt.order_by(Voucher.redeemed_at.desc(), Voucher.id.desc())


# --- statements and settlement -----------------------------------------------------------------------


@dataclass(frozen=True)
class StatementLine:
    service_id: int
    name: str
    count: int
    coins: int


def statement(merchant: Merchant, period_from: datetime, period_to: datetime, *,
              unsettled_only: bool = False) -> list[StatementLine]:
    """Count and coins per service of the vouchers redeemed in the period, by one aggregate query."""
    stmt = (select(Service.id, Service.name, func.count(Voucher.id), func.sum(Voucher.coins))
            .join(Voucher, Voucher.service_id == Service.id)
            .where(Voucher.merchant_id == merchant.id, Voucher.status == VoucherStatus.REDEEMED,
                   Voucher.redeemed_at >= period_from, Voucher.redeemed_at < period_to)
            .group_by(Service.id, Service.name).order_by(Service.id))
    if unsettled_only:
        stmt = stmt.where(Voucher.settlement_id.is_(None))
    return [StatementLine(sid, name, int(count), int(coins)) for sid, name, count, coins in db.session.execute(stmt)]


def settle(merchant: Merchant, period_from: datetime, period_to: datetime, *, actor: User) -> Settlement:
    """An admin settles the shop's unsettled redemptions of the period: their coins move to the settled account
    and the statement is kept for the town's subsidy or recognition."""
    if not actor.has_role(Role.ADMIN):
        raise Forbidden()
    account = merchant_account(merchant.id)
    lock(merchant)  # two settlements of one shop at once: the second sees the vouchers the first took
    lines = statement(merchant, period_from, period_to, unsettled_only=True)
    coins = sum(line.coins for line in lines)
    if coins == 0:
        raise InvalidState(_l("这段时间没有待结算的兑换。"))
    settlement = Settlement(merchant_id=merchant.id, period_from=period_from, period_to=period_to,
                            vouchers=sum(line.count for line in lines), coins=coins, created_by_id=actor.id,
                            lines=[line.__dict__ for line in lines])
    db.session.add(settlement)
    db.session.flush()
    db.session.execute(update(Voucher).where(
        Voucher.merchant_id == merchant.id, Voucher.status == VoucherStatus.REDEEMED,
        Voucher.settlement_id.is_(None), Voucher.redeemed_at >= period_from, Voucher.redeemed_at < period_to)
        .values(settlement_id=settlement.id).execution_options(synchronize_session=False))
    transfer(TxKind.SETTLE, account, system_account(SystemAccount.SETTLED), coins, actor=actor,
             ref=("settlement", settlement.id), idempotency_key=f"settlement:{settlement.id}",
             memo=memos.write(memos.SETTLED, merchant=merchant.name))
    record_event("merchant.settle", settlement, actor=actor, details={"coins": coins})
    return settlement
