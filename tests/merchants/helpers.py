"""Shared set-up for the merchant tests: a shop with staff and services, coins for a volunteer, balances."""

from __future__ import annotations

import itertools

from sqlalchemy import select

from credits.extensions import db
from credits.ledger.models import Account, SystemAccount, TxKind
from credits.ledger.services import system_account, transfer, user_account
from credits.merchants import services as merchants
from credits.merchants.models import Merchant, Service

_staff_phones = itertools.count(13900000000)
_shops = itertools.count(1)


def give(user, coins: int) -> None:
    """Coins for a volunteer, by an adjustment from issuance."""
    transfer(TxKind.ADJUST, system_account(SystemAccount.ISSUANCE), user_account(user.id), coins, actor=None,
             memo="test")
    db.session.commit()


def make_shop(coordinator, name: str | None = None, category: str = "car_wash") -> Merchant:
    merchant = merchants.create_merchant({"name": name or f"测试商户{next(_shops)}", "address": "奉城镇南街1号",
                                          "category": category, "description": ""}, actor=coordinator)
    db.session.commit()
    return merchant


def make_staff(merchant: Merchant, coordinator, name: str = "王店员"):
    user = merchants.add_staff(merchant, {"phone": str(next(_staff_phones)), "name": name,
                                          "password": "gongyi-test-2026"}, actor=coordinator)
    db.session.commit()
    return user


def make_service(merchant: Merchant, coordinator, *, name: str = "精洗", price: int = 3,
                 daily_quota: int | None = None) -> Service:
    service = merchants.create_service(merchant, {"name": name, "description": "", "price": price,
                                                  "daily_quota": daily_quota}, actor=coordinator)
    db.session.commit()
    return service


def balance_of(**owner) -> int:
    """The cached balance of the account owned as given (user_id=…, merchant_id=…, system_code=…); 0 if none."""
    return db.session.scalar(select(Account.balance).filter_by(**owner)) or 0


def escrow() -> int:
    return balance_of(system_code=SystemAccount.ESCROW.value)
