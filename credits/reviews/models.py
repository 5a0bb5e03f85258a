"""An annual review: candidate projects, invited reviewers and their scores, each pair and triple unique."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, ForeignKeyConstraint, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from credits.auth.models import User
from credits.extensions import db, sql_list
from credits.projects.models import Project
from credits.timeutil import UTCDateTime, utcnow


class ReviewStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Review(db.Model):
    __tablename__ = "reviews"
    __table_args__ = (
        CheckConstraint(f"status IN ({sql_list(ReviewStatus)})", name="status"),
        CheckConstraint("year >= 2000 AND year <= 2100", name="year"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int] = mapped_column(index=True)
    title: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(10), default=ReviewStatus.OPEN.value)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    created_by: Mapped[User] = relationship()
    candidates: Mapped[list[ReviewCandidate]] = relationship(order_by="ReviewCandidate.project_id",
                                                             viewonly=True)
    reviewers: Mapped[list[ReviewReviewer]] = relationship(order_by="ReviewReviewer.user_id", viewonly=True)


class ReviewCandidate(db.Model):
    __tablename__ = "review_candidates"

    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id"), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), primary_key=True, index=True)
    added_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    project: Mapped[Project] = relationship(lazy="joined")


class ReviewReviewer(db.Model):
    __tablename__ = "review_reviewers"

    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    invited_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    invited_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship(foreign_keys=[user_id], lazy="joined")


class ReviewScore(db.Model):
    """One reviewer's score of one candidate. The composite foreign keys make the database refuse a score by
    someone not invited, or of a project that is not a candidate of that review."""

    __tablename__ = "review_scores"
    __table_args__ = (
        CheckConstraint("score >= 0 AND score <= 100", name="score"),
        UniqueConstraint("review_id", "project_id", "reviewer_id"),
        ForeignKeyConstraint(["review_id", "project_id"],
                             ["review_candidates.review_id", "review_candidates.project_id"],
                             name="fk_review_scores_candidate"),
        ForeignKeyConstraint(["review_id", "reviewer_id"],
                             ["review_reviewers.review_id", "review_reviewers.user_id"],
                             name="fk_review_scores_reviewer"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int]
    project_id: Mapped[int]
    reviewer_id: Mapped[int]
    score: Mapped[int]
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    reviewer: Mapped[User] = relationship(primaryjoin="foreign(ReviewScore.reviewer_id) == User.id", viewonly=True)
