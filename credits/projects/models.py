"""Projects carry their own claim counters so that a guarded UPDATE can hand out places atomically."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from credits.auth.models import Organization, User
from credits.extensions import db, sql_list
from credits.timeutil import UTCDateTime, utcnow


class ProjectStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class ClaimStatus(StrEnum):
    CONFIRMED = "confirmed"
    WAITLISTED = "waitlisted"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"


LIVE_CLAIM = "status IN ('confirmed', 'waitlisted')"



class Project(db.Model):
    __tablename__ = "projects"
    __table_args__ = (
        CheckConstraint(f"status IN ({sql_list(ProjectStatus)})", name="status"),
        CheckConstraint("ends_at > starts_at", name="period"),
        CheckConstraint("capacity >= 1", name="capacity"),
        CheckConstraint("waitlist_capacity >= 0", name="waitlist_capacity"),
        CheckConstraint("confirmed_count >= 0 AND confirmed_count <= capacity", name="confirmed_within_capacity"),
        CheckConstraint("waitlist_count >= 0 AND waitlist_count <= waitlist_capacity", name="waitlist_within_capacity"),
        CheckConstraint("block_minutes >= 1 AND coins_per_block >= 1", name="credit_rule"),
        Index("ix_projects_status_publish_at", "status", "publish_at"),
        Index("ix_projects_starts_at", "starts_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    category: Mapped[str] = mapped_column(String(40), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    location: Mapped[str] = mapped_column(String(200))
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    publish_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20), default=ProjectStatus.DRAFT.value)
    capacity: Mapped[int]
    waitlist_capacity: Mapped[int]
    block_minutes: Mapped[int]
    coins_per_block: Mapped[int]
    confirmed_count: Mapped[int] = mapped_column(default=0)
    waitlist_count: Mapped[int] = mapped_column(default=0)
    waitlist_seq: Mapped[int] = mapped_column(default=0)  # hands out first-come-first-served waitlist order
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    organization: Mapped[Organization] = relationship(lazy="joined")

    def is_open(self, now: datetime) -> bool:
        """Open for claims: published, past publish_at and not yet ended (SPEC 2.1)."""
        return (self.status == ProjectStatus.PUBLISHED and self.publish_at is not None
                and self.publish_at <= now < self.ends_at)

    @property
    def places_left(self) -> int:
        return self.capacity - self.confirmed_count


class Claim(db.Model):
    __tablename__ = "claims"
    __table_args__ = (
        CheckConstraint(f"status IN ({sql_list(ClaimStatus)})", name="status"),
        # One live claim per volunteer per project; a cancelled claim does not block claiming again.
        Index("uq_claims_live", "project_id", "volunteer_id", unique=True,
              sqlite_where=text(LIVE_CLAIM), postgresql_where=text(LIVE_CLAIM)),
        Index("ix_claims_project_status", "project_id", "status", "waitlist_seq"),
        Index("ix_claims_volunteer_status", "volunteer_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(20))
    waitlist_seq: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    no_show_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    project: Mapped[Project] = relationship()
    volunteer: Mapped[User] = relationship()
