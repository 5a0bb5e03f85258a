"""Roster imports (a stored preview, then its confirmation), activation links and invitations to join."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from credits.auth.models import Organization, User
from credits.extensions import db
from credits.timeutil import UTCDateTime, utcnow


class RosterImport(db.Model):
    """An uploaded roster, parsed and checked: every row with its problem or what confirming will do with it.
    Nothing else is written until it is confirmed; confirming again writes nothing new."""

    __tablename__ = "roster_imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    filename: Mapped[str] = mapped_column(String(255))
    file_sha256: Mapped[str] = mapped_column(String(64), index=True)
    # [{row, name, phone, party_member, note, problem, action}], in file order.
    rows: Mapped[list] = mapped_column(JSON)
    ok: Mapped[int] = mapped_column(default=0)
    problems: Mapped[int] = mapped_column(default=0)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    result: Mapped[dict | None] = mapped_column(JSON)  # {created, invited, skipped} of the first confirm

    organization: Mapped[Organization] = relationship()


class ActivationToken(db.Model):
    """The one-time link of an invitation SMS. Only the SHA-256 of the token is kept (it is 256 random bits, so a
    plain hash suffices, as for API tokens); a resend voids the earlier link."""

    __tablename__ = "activation_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(foreign_keys=[user_id])


class MemberInvitation(db.Model):
    """An organisation's roster named someone already registered and in no organisation: they join only when they
    accept it themselves."""

    __tablename__ = "member_invitations"
    __table_args__ = (UniqueConstraint("organization_id", "user_id"),
                      Index("ix_member_invitations_user_open", "user_id", "answered_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    import_id: Mapped[int | None] = mapped_column(ForeignKey("roster_imports.id"))
    party_member: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accepted: Mapped[bool | None] = mapped_column()

    organization: Mapped[Organization] = relationship()
    user: Mapped[User] = relationship()
