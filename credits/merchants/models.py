"""Merchants, services with daily quotas, vouchers held in escrow, and settlements."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from credits.auth.models import User
from credits.extensions import Coins, db, sql_list
from credits.timeutil import UTCDateTime, utcnow


class MerchantCategory(StrEnum):
    CAR_WASH = "car_wash"  # 洗车
    EARLY_EDUCATION = "early_education"  # 早教
    CHILDREN_PHOTOGRAPHY = "children_photography"  # 儿童摄影
    HAIR_BEAUTY = "hair_beauty"  # 美容美发
    OTHER = "other"


class VoucherStatus(StrEnum):
    ISSUED = "issued"
    REDEEMED = "redeemed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class Merchant(db.Model):
    __tablename__ = "merchants"
    __table_args__ = (CheckConstraint(f"category IN ({sql_list(MerchantCategory)})", name="category"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    address: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(30))
    description: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    services: Mapped[list[Service]] = relationship(back_populates="merchant", order_by="Service.id")


class Service(db.Model):
    __tablename__ = "merchant_services"
    __table_args__ = (
        CheckConstraint("price >= 1", name="price"),
        CheckConstraint("daily_quota IS NULL OR daily_quota >= 0", name="daily_quota"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    price: Mapped[int] = mapped_column(Coins)
    daily_quota: Mapped[int | None]
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    merchant: Mapped[Merchant] = relationship(back_populates="services", lazy="joined")


class ServiceDay(db.Model):
    """Vouchers of a service taken on one local day, counted by a guarded UPDATE against the daily quota."""

    __tablename__ = "service_days"
    __table_args__ = (CheckConstraint("taken >= 0", name="taken"),)

    service_id: Mapped[int] = mapped_column(ForeignKey("merchant_services.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    taken: Mapped[int] = mapped_column(default=0)


class Voucher(db.Model):
    __tablename__ = "vouchers"
    __table_args__ = (
        CheckConstraint(f"status IN ({sql_list(VoucherStatus)})", name="status"),
        CheckConstraint("coins >= 1", name="coins"),
        Index("ix_vouchers_volunteer_status", "volunteer_id", "status"),
        Index("ix_vouchers_merchant_redeemed", "merchant_id", "redeemed_at"),
        Index("ix_vouchers_status_expires", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    service_id: Mapped[int] = mapped_column(ForeignKey("merchant_services.id"))
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    coins: Mapped[int] = mapped_column(Coins)
    status: Mapped[str] = mapped_column(String(12), default=VoucherStatus.ISSUED.value)
    day: Mapped[date] = mapped_column(Date)  # the local day it counts against the service's quota
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    redeemed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # cancelled or expired
    issue_key: Mapped[str | None] = mapped_column(String(200), unique=True)  # "<volunteer id>:<Idempotency-Key>"
    redeem_key: Mapped[str | None] = mapped_column(String(200), unique=True)  # "<staff id>:<Idempotency-Key>"
    settlement_id: Mapped[int | None] = mapped_column(ForeignKey("settlements.id"), index=True)

    volunteer: Mapped[User] = relationship(foreign_keys=[volunteer_id])
    service: Mapped[Service] = relationship(lazy="joined")
    merchant: Mapped[Merchant] = relationship()


class Settlement(db.Model):
    """Coins a merchant redeemed in a period, moved to the settled account; `lines` is the statement."""

    __tablename__ = "settlements"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    period_from: Mapped[datetime] = mapped_column(UTCDateTime)
    period_to: Mapped[datetime] = mapped_column(UTCDateTime)
    vouchers: Mapped[int]
    coins: Mapped[int] = mapped_column(Coins)
    lines: Mapped[list] = mapped_column(JSON)  # [{service_id, name, count, coins}]
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    merchant: Mapped[Merchant] = relationship()
