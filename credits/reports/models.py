"""Daily sums of the ledger, kept for finished days so the dashboard need not rescan a year of transactions."""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, CheckConstraint, Date, String
from sqlalchemy.orm import Mapped, mapped_column

from credits.extensions import db


class LedgerDay(db.Model):
    """Coins moved on one local day by one kind of transaction. The ledger is append-only and a transaction's
    created_at is fixed when it is written, so a finished day's sums never change."""

    __tablename__ = "ledger_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    transactions: Mapped[int]


class LedgerRollup(db.Model):
    """The one row saying how far ledger_days reaches: every local day up to `through` is summed there."""

    __tablename__ = "ledger_rollup"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    through: Mapped[date | None] = mapped_column(Date)
