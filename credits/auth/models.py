"""Users with several roles, their organisations, API tokens and audit events."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from flask_login import UserMixin
from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from credits.extensions import db, sql_list
from credits.timeutil import UTCDateTime, utcnow


class Role(StrEnum):
    VOLUNTEER = "volunteer"
    COORDINATOR = "coordinator"
    MERCHANT = "merchant"
    ADMIN = "admin"


class OrgKind(StrEnum):
    GOVERNMENT = "government"  # 镇党委、街道等
    ENTERPRISE = "enterprise"  # 非公企业（两新组织）
    SOCIAL = "social"  # 社会组织（两新组织）



class Organization(db.Model):
    __tablename__ = "organizations"
    __table_args__ = (CheckConstraint(f"kind IN ({sql_list(OrgKind)})", name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UserRole(db.Model):
    __tablename__ = "user_roles"
    __table_args__ = (CheckConstraint(f"role IN ({sql_list(Role)})", name="role"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(20), primary_key=True)


class User(UserMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("session_version >= 1", name="session_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(11), unique=True)
    name: Mapped[str] = mapped_column(String(50))
    password_hash: Mapped[str] = mapped_column(String(255))
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    # Registration may only ask to join: the organisation's coordinators confirm before the user counts as a member.
    requested_organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    organization_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    volunteer_no: Mapped[str | None] = mapped_column(String(20), unique=True)
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"), index=True)  # staff's shop
    is_active_user: Mapped[bool] = mapped_column("active", default=True)
    session_version: Mapped[int] = mapped_column(default=1)
    approved_minutes: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # 长辈模式 (large text and targets): kept on the account so it follows the person to another phone.
    large_mode: Mapped[bool] = mapped_column(default=False, server_default=false())
    locale: Mapped[str] = mapped_column(String(10), default="zh_CN", server_default="zh_CN")  # of their messages
    # When a code sent to this phone last came back (registration, reset, change of phone); NULL: never verified.
    phone_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # SHA-256 of the calendar feed's secret token; NULL: no feed. Only the hash is kept, as for API tokens.
    calendar_token_hash: Mapped[str | None] = mapped_column(String(64), index=True, unique=True)
    # 党员: reported per organisation in the participation report (SPEC 2.8); set by a roster import or an admin.
    party_member: Mapped[bool] = mapped_column(default=False, server_default=false())
    # An account an organisation's roster import created: no password yet, and no sign-in until the person opens
    # the activation link of their invitation SMS and sets one (SPEC 2.8).
    pending_activation: Mapped[bool] = mapped_column(default=False, server_default=false())

    organization: Mapped[Organization | None] = relationship(foreign_keys=[organization_id])
    requested_organization: Mapped[Organization | None] = relationship(foreign_keys=[requested_organization_id])
    role_rows: Mapped[list[UserRole]] = relationship(cascade="all, delete-orphan", lazy="selectin")

    @property
    def roles(self) -> list[str]:
        return sorted(r.role for r in self.role_rows)

    def has_role(self, *roles: str) -> bool:
        return any(r.role in roles for r in self.role_rows)

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.is_active_user

    def get_id(self) -> str:
        # The session version rides in the id so that bumping it ends every session and remember cookie.
        return f"{self.id}.{self.session_version}"


class CodePurpose(StrEnum):
    REGISTER = "register"
    RESET = "reset"
    CHANGE_PHONE = "change_phone"


class PhoneCode(db.Model):
    """A 6-digit code sent by SMS. Only its keyed hash is kept; the newest code of a phone and purpose is the one
    that counts. `user_id` is who asked for a change of phone (the code proves they hold the new one)."""

    __tablename__ = "phone_codes"
    __table_args__ = (CheckConstraint(f"purpose IN ({sql_list(CodePurpose)})", name="purpose"),
                      CheckConstraint("attempts >= 0", name="attempts"),
                      Index("ix_phone_codes_phone_purpose", "phone", "purpose", "id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(11))
    purpose: Mapped[str] = mapped_column(String(20))
    code_hash: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    attempts: Mapped[int] = mapped_column(default=0)  # wrong tries; at the limit the code is void
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApiToken(db.Model):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class AuditEvent(db.Model):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_object", "object_type", "object_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    action: Mapped[str] = mapped_column(String(60), index=True)
    object_type: Mapped[str | None] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(40))
    address: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict | None] = mapped_column(JSON)

    actor: Mapped[User | None] = relationship()


