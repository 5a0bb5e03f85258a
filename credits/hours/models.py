"""Service records, the per-(volunteer, project) credit state, and certificates."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from credits.auth.models import Organization, User
from credits.extensions import Coins, db, sql_list
from credits.projects.models import Claim, Project
from credits.timeutil import UTCDateTime, utcnow


class RecordStatus(StrEnum):
    OPEN = "open"  # checked in, not yet out
    PENDING = "pending"
    AWAITING_SECOND_APPROVAL = "awaiting_second_approval"  # approved once; the issuance needs a second person
    APPROVED = "approved"
    REJECTED = "rejected"
    REVOKED = "revoked"
    LAPSED = "lapsed"  # an open check-in older than 12 h: no hours


class RecordSource(StrEnum):
    CHECKIN = "checkin"
    MANUAL = "manual"


# Records that hold time: they count toward the daily limit and block overlapping records.
HOLDING_TIME = (RecordStatus.OPEN.value, RecordStatus.PENDING.value, RecordStatus.AWAITING_SECOND_APPROVAL.value,
                RecordStatus.APPROVED.value)



class ServiceRecord(db.Model):
    __tablename__ = "service_records"
    __table_args__ = (
        CheckConstraint(f"status IN ({sql_list(RecordStatus)})", name="status"),
        CheckConstraint(f"source IN ({sql_list(RecordSource)})", name="source"),
        CheckConstraint("ended_at IS NULL OR ended_at > started_at", name="period"),
        CheckConstraint("minutes IS NULL OR (minutes >= 0 AND minutes <= 720)", name="minutes"),
        CheckConstraint("status = 'open' OR status = 'lapsed' OR (ended_at IS NOT NULL AND minutes IS NOT NULL)",
                        name="closed_has_minutes"),
        Index("uq_service_records_open", "claim_id", unique=True,
              sqlite_where=text("status = 'open'"), postgresql_where=text("status = 'open'")),
        # The trailing columns let the reports' aggregates read these indexes alone, never the table: per
        # volunteer, per project, and over a period.
        Index("ix_service_records_volunteer_time", "volunteer_id", "started_at", "status", "minutes"),
        Index("ix_service_records_project_status", "project_id", "status", "volunteer_id", "minutes"),
        Index("ix_service_records_report", "started_at", "status", "project_id", "volunteer_id", "minutes"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"), index=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    minutes: Mapped[int | None]
    note: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(30))
    reason: Mapped[str | None] = mapped_column(Text)
    # Who showed the on-site codes the volunteer checked in and out with (each coordinator's code is their own):
    # they vouch for a check-in, so its automatic approval counts against their daily issuance, and a record of
    # theirs is never approved automatically.
    checkin_code_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    checkout_code_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Four eyes (SPEC 2.3): the first approval of an issuance above the policy's limits; a second person completes it.
    first_approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    first_approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    claim: Mapped[Claim] = relationship()
    project: Mapped[Project] = relationship()
    volunteer: Mapped[User] = relationship(foreign_keys=[volunteer_id])
    reviewed_by: Mapped[User | None] = relationship(foreign_keys=[reviewed_by_id])
    first_approved_by: Mapped[User | None] = relationship(foreign_keys=[first_approved_by_id])


class CreditState(db.Model):
    """What the cumulative rule has settled for one volunteer on one project (SPEC 2.3): approved minutes, the
    coins issued net of clawbacks, and the shortfall — what revocations should have clawed back but the balance
    did not hold, moved to the volunteer's debt (the account's `debt`). issued_net − shortfall is always exactly
    what the minutes earn."""

    __tablename__ = "credit_states"
    __table_args__ = (CheckConstraint("approved_minutes >= 0 AND issued_net >= 0", name="not_negative"),
                      CheckConstraint("shortfall >= 0", name="shortfall"))

    volunteer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    approved_minutes: Mapped[int] = mapped_column(default=0)
    issued_net: Mapped[int] = mapped_column(Coins, default=0)
    shortfall: Mapped[int] = mapped_column(Coins, default=0)

    project: Mapped[Project] = relationship()


class Certificate(db.Model):
    """志愿服务证明: a snapshot of approved hours for a period, verifiable by its number."""

    __tablename__ = "certificates"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    period_from: Mapped[datetime] = mapped_column(UTCDateTime)
    period_to: Mapped[datetime] = mapped_column(UTCDateTime)
    total_minutes: Mapped[int]
    lines: Mapped[list] = mapped_column(JSON)  # [{project_id, title, organization, minutes}] as issued
    record_ids: Mapped[list] = mapped_column(JSON)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    volunteer: Mapped[User] = relationship()
    organization: Mapped[Organization | None] = relationship()
