"""Accounts with cached balances, append-only transactions and their entries."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from credits.extensions import Coins, db, sql_list
from credits.timeutil import UTCDateTime, utcnow


class AccountKind(StrEnum):
    VOLUNTEER = "volunteer"
    MERCHANT = "merchant"
    SYSTEM = "system"


class SystemAccount(StrEnum):
    ISSUANCE = "issuance"  # the source of every coin; the only account that runs negative
    ESCROW = "escrow"  # coins held for outstanding vouchers
    EXPIRED = "expired"
    SETTLED = "settled"


class TxKind(StrEnum):
    ISSUE = "issue"
    CLAWBACK = "clawback"
    HOLD = "hold"
    RELEASE = "release"
    REDEEM = "redeem"
    SETTLE = "settle"
    EXPIRE = "expire"
    ADJUST = "adjust"



class Account(db.Model):
    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint(f"kind IN ({sql_list(AccountKind)})", name="kind"),
        CheckConstraint(
            "(kind = 'volunteer' AND user_id IS NOT NULL AND merchant_id IS NULL AND system_code IS NULL)"
            " OR (kind = 'merchant' AND merchant_id IS NOT NULL AND user_id IS NULL AND system_code IS NULL)"
            " OR (kind = 'system' AND system_code IS NOT NULL AND user_id IS NULL AND merchant_id IS NULL)",
            name="one_owner",
        ),
        CheckConstraint(f"system_code IS NULL OR system_code IN ({sql_list(SystemAccount)})", name="system_code"),
        CheckConstraint("balance >= 0 OR system_code = 'issuance'", name="not_negative"),
        CheckConstraint("entry_count >= 0", name="entry_count"),
        CheckConstraint("debt >= 0 AND (debt = 0 OR kind = 'volunteer')", name="debt"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), unique=True)
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"), unique=True)
    system_code: Mapped[str | None] = mapped_column(String(20), unique=True)
    balance: Mapped[int] = mapped_column(Coins, default=0)
    entry_count: Mapped[int] = mapped_column(default=0)
    # Coins a volunteer owes: what revocations should have clawed back but the balance did not hold (SPEC 2.3).
    # Paid first, by a clawback, from any coins that later come to the account; verify checks it against the
    # shortfalls recorded and the payments posted.
    debt: Mapped[int] = mapped_column(Coins, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        owner = self.system_code or f"{self.kind}:{self.user_id or self.merchant_id}"
        return f"<Account {self.id} {owner}>"


class Transaction(db.Model):
    __tablename__ = "ledger_transactions"
    __table_args__ = (
        CheckConstraint(f"kind IN ({sql_list(TxKind)})", name="kind"),
        Index("ix_ledger_transactions_ref", "ref_type", "ref_id"),
        # Covers the reports' sums by kind over a period, so they read the index and not the table.
        Index("ix_ledger_transactions_created_kind_amount", "created_at", "kind", "amount"),
        CheckConstraint("amount >= 1", name="amount"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Coins moved: the sum of the positive entries. Written once with the entries; verify checks it.
    amount: Mapped[int] = mapped_column(Coins)
    memo: Mapped[str] = mapped_column(Text, default="")
    ref_type: Mapped[str | None] = mapped_column(String(40))
    ref_id: Mapped[int | None]

    entries: Mapped[list[Entry]] = relationship(back_populates="transaction", order_by="Entry.id",
                                                 lazy="selectin")


class Entry(db.Model):
    """One account's side of a transaction. `seq` numbers an account's entries 1, 2, 3 … without gaps and
    `balance_after` is the running balance, so an entry changed or removed by hand shows up in verify."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint("amount <> 0", name="amount_not_zero"),
        CheckConstraint("seq >= 1", name="seq"),
        UniqueConstraint("account_id", "seq"),
        # Also the transaction's entries: the participation report sums them per account from the index alone.
        Index("ix_ledger_entries_transaction_account_amount", "transaction_id", "account_id", "amount"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    amount: Mapped[int] = mapped_column(Coins)
    balance_after: Mapped[int] = mapped_column(Coins)
    seq: Mapped[int]

    transaction: Mapped[Transaction] = relationship(back_populates="entries")
    account: Mapped[Account] = relationship()
