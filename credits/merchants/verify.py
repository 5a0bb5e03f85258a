"""Invariant 4: escrow holds exactly the coins of outstanding vouchers."""

from __future__ import annotations

from sqlalchemy import func, select

from credits.extensions import db
from credits.ledger.models import Account, SystemAccount
from credits.ledger.verify import Breach
from credits.merchants.models import Voucher, VoucherStatus


def check_escrow() -> list[Breach]:
    escrow = db.session.scalar(select(Account.balance).where(Account.system_code == SystemAccount.ESCROW)) or 0
    outstanding = db.session.scalar(select(func.coalesce(func.sum(Voucher.coins), 0))
                                    .where(Voucher.status == VoucherStatus.ISSUED))
    if escrow != outstanding:
        return [Breach(4, "escrow", f"escrow holds {escrow} coins but outstanding vouchers hold {outstanding}")]
    return []
