"""The annual review (SPEC 2.6): a coordinator opens a review for a year, picks candidate projects of that year and
invites coordinators as reviewers; each reviewer scores each candidate 0–100 beside its figures; the ranking orders
candidates by mean score, then approved hours."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from fractions import Fraction

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select

from credits.auth.audit import record_event
from credits.auth.models import Role, User, UserRole
from credits.database import lock
from credits.errors import Forbidden, InvalidInput, InvalidState, NotFound
from credits.extensions import db
from credits.projects.models import Project, ProjectStatus
from credits.reports.services import ProjectFigures, project_figures
from credits.reviews.models import Review, ReviewCandidate, ReviewReviewer, ReviewScore, ReviewStatus
from credits.timeutil import hours_number, local_day_range, utcnow

SCORE_MIN, SCORE_MAX = 0, 100
INELIGIBLE_STATUSES = (ProjectStatus.DRAFT.value, ProjectStatus.CANCELLED.value)


class ReviewClosed(InvalidState):
    message = _l("评审已结束，不能再修改。")


# --- reading -----------------------------------------------------------------------------------------


def require_coordinator(actor: User) -> None:
    if not actor.has_role(Role.COORDINATOR):
        raise Forbidden()


def can_manage(review: Review, user: User) -> bool:
    """A review is managed by the coordinator who opened it, and by admins (SPEC 2.6)."""
    return user.id == review.created_by_id or user.has_role(Role.ADMIN)


def _require_manager(review: Review, actor: User) -> None:
    if not can_manage(review, actor):
        raise Forbidden(_l("只有发起本次评审的协调员或管理员可以管理评审。"))


def get_review(review_id: int, *, viewer: User) -> Review:
    """A review, for coordinators and admins. Raises Forbidden, NotFound."""
    if not viewer.has_role(Role.COORDINATOR, Role.ADMIN):
        raise Forbidden()
    review = db.session.get(Review, review_id)
    if review is None:
        raise NotFound(what="review")
    return review


def all_reviews():
    """The ordered query of every review, newest year first."""
    return select(Review).order_by(Review.year.desc(), Review.id.desc())


def year_bounds(year: int) -> tuple[datetime, datetime]:
    """The review year as UTC instants: a project belongs to the local year its start falls in."""
    return local_day_range(date(year, 1, 1), date(year, 12, 31))


def eligible_projects(review: Review):
    """The ordered query of projects that may be candidates: started in the review's year, neither draft nor
    cancelled."""
    start, end = year_bounds(review.year)
    return (select(Project).where(Project.starts_at >= start, Project.starts_at < end,
                                  Project.status.not_in(INELIGIBLE_STATUSES))
            .order_by(Project.starts_at, Project.id))


def addable_projects(review: Review) -> list[Project]:
    """Eligible projects not yet candidates, for the page's picker."""
    taken = select(ReviewCandidate.project_id).where(ReviewCandidate.review_id == review.id)
    return list(db.session.scalars(eligible_projects(review).where(Project.id.not_in(taken))))


def invitable_coordinators(review: Review) -> list[User]:
    """Active coordinators not yet invited, for the page's picker."""
    invited = select(ReviewReviewer.user_id).where(ReviewReviewer.review_id == review.id)
    return list(db.session.scalars(
        select(User).join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role == Role.COORDINATOR, User.is_active_user.is_(True), User.id.not_in(invited))
        .order_by(User.name, User.id)))


def is_reviewer(review: Review, user: User) -> bool:
    return db.session.get(ReviewReviewer, (review.id, user.id)) is not None


def scores_by(review: Review, reviewer: User) -> dict[int, ReviewScore]:
    """The reviewer's scores in this review, by project id."""
    return {s.project_id: s for s in db.session.scalars(
        select(ReviewScore).where(ReviewScore.review_id == review.id, ReviewScore.reviewer_id == reviewer.id))}


# --- changing ----------------------------------------------------------------------------------------


def _require_open(review: Review) -> None:
    """Lock the review and check it is still open: a close racing any change either waits for it or refuses it."""
    lock(review)
    if review.status != ReviewStatus.OPEN:
        raise ReviewClosed()


def open_review(year: int, title: str, *, by: User) -> Review:
    """Open a review for a year. Raises Forbidden."""
    require_coordinator(by)
    review = Review(year=year, title=title, status=ReviewStatus.OPEN, created_by_id=by.id)
    db.session.add(review)
    db.session.flush()
    record_event("review.open", review, actor=by, details={"year": year, "title": title})
    return review


def _unknown(ids: Sequence[int], found: set[int], field: str) -> None:
    missing = sorted(set(ids) - found)
    if missing:
        raise InvalidInput(fields={field: [str(_l("找不到：%(ids)s。", ids=", ".join(map(str, missing))))]})


def add_candidates(review: Review, project_ids: Sequence[int], *, actor: User) -> list[ReviewCandidate]:
    """Add projects as candidates, all or none; one already a candidate is left as it is. Only projects that
    started in the review's year and are neither draft nor cancelled qualify. Returns the candidates added.
    Raises Forbidden, InvalidInput (unknown ids), InvalidState (ineligible projects, review closed)."""
    _require_manager(review, actor)
    _require_open(review)
    projects = {p.id: p for p in db.session.scalars(select(Project).where(Project.id.in_(set(project_ids))))}
    _unknown(project_ids, set(projects), "project_ids")
    eligible = set(db.session.scalars(eligible_projects(review).with_only_columns(Project.id)
                                      .where(Project.id.in_(projects))))
    refused = sorted(set(projects) - eligible)
    if refused:
        raise InvalidState(_l("这些项目不在 %(year)s 年举办或未发布、已取消，不能参评：%(ids)s。", year=review.year,
                              ids=", ".join(map(str, refused))), fields={"project_ids": refused})
    already = set(db.session.scalars(select(ReviewCandidate.project_id).where(
        ReviewCandidate.review_id == review.id, ReviewCandidate.project_id.in_(eligible))))
    added = [ReviewCandidate(review_id=review.id, project_id=pid, added_by_id=actor.id)
             for pid in sorted(eligible - already)]
    db.session.add_all(added)
    db.session.flush()
    if added:
        record_event("review.add_candidates", review, actor=actor,
                     details={"project_ids": [c.project_id for c in added]})
    return added


def remove_candidate(review: Review, project_id: int, *, actor: User) -> None:
    """Take a project off the list, with the scores it had. Raises Forbidden, NotFound, InvalidState."""
    _require_manager(review, actor)
    _require_open(review)
    candidate = db.session.get(ReviewCandidate, (review.id, project_id))
    if candidate is None:
        raise NotFound(what="candidate")
    scores = db.session.execute(delete(ReviewScore).where(
        ReviewScore.review_id == review.id, ReviewScore.project_id == project_id)
        .execution_options(synchronize_session=False)).rowcount
    db.session.delete(candidate)
    db.session.flush()
    record_event("review.remove_candidate", review, actor=actor,
                 details={"project_id": project_id, "scores_removed": scores})


def invite_reviewers(review: Review, user_ids: Sequence[int], *, actor: User) -> list[ReviewReviewer]:
    """Invite coordinators to score, all or none; one already invited is left as it is. Returns those invited now.
    Raises Forbidden, InvalidInput (unknown ids), InvalidState (not an active coordinator, review closed)."""
    _require_manager(review, actor)
    _require_open(review)
    users = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(set(user_ids))))}
    _unknown(user_ids, set(users), "user_ids")
    refused = sorted(uid for uid, u in users.items() if not (u.is_active_user and u.has_role(Role.COORDINATOR)))
    if refused:
        raise InvalidState(_l("只能邀请在职的协调员担任评审：%(ids)s。", ids=", ".join(map(str, refused))),
                           fields={"user_ids": refused})
    already = set(db.session.scalars(select(ReviewReviewer.user_id).where(ReviewReviewer.review_id == review.id)))
    invited = [ReviewReviewer(review_id=review.id, user_id=uid, invited_by_id=actor.id)
               for uid in sorted(set(users) - already)]
    db.session.add_all(invited)
    db.session.flush()
    if invited:
        record_event("review.invite", review, actor=actor, details={"user_ids": [r.user_id for r in invited]})
    return invited


def score(review: Review, project: Project, value: int, comment: str = "", *, reviewer: User) -> ReviewScore:
    """The reviewer's score of a candidate, 0–100 with a comment; scoring again replaces it. Concurrent scores
    serialize on the review's row lock, so the second sees the first's row and updates it; the unique constraint
    stands behind the lock.
    Raises Forbidden (not invited), InvalidInput (out of range), InvalidState (closed), NotFound (not a
    candidate)."""
    if not (reviewer.has_role(Role.COORDINATOR) and is_reviewer(review, reviewer)):
        raise Forbidden(_l("您没有受邀担任本次评审的评审人。"))
    if not SCORE_MIN <= value <= SCORE_MAX:
        raise InvalidInput(fields={"score": [str(_l("评分须在 0 到 100 之间。"))]})
    _require_open(review)
    if db.session.get(ReviewCandidate, (review.id, project.id)) is None:
        raise NotFound(what="candidate")
    existing = db.session.scalars(select(ReviewScore).where(
        ReviewScore.review_id == review.id, ReviewScore.project_id == project.id,
        ReviewScore.reviewer_id == reviewer.id)).one_or_none()
    previous = existing.score if existing is not None else None
    now = utcnow()
    if existing is None:
        existing = ReviewScore(review_id=review.id, project_id=project.id, reviewer_id=reviewer.id, created_at=now)
        db.session.add(existing)
    existing.score, existing.comment, existing.updated_at = value, comment, now
    db.session.flush()
    record_event("review.score", review, actor=reviewer,
                 details={"project_id": project.id, "score": value, "previous": previous})
    return existing


def close_review(review: Review, *, actor: User) -> Review:
    """Close the review: scores are final from now on. Raises Forbidden, InvalidState."""
    _require_manager(review, actor)
    _require_open(review)
    review.status = ReviewStatus.CLOSED
    review.closed_at = utcnow()
    db.session.flush()
    record_event("review.close", review, actor=actor)
    return review


# --- the ranking -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Remark:
    reviewer: str
    score: int
    comment: str


@dataclass(frozen=True)
class RankingRow:
    rank: int
    project: Project
    mean_score: float | None  # None while nobody has scored it
    scores: int
    figures: ProjectFigures
    remarks: list[Remark]

    @property
    def approved_hours(self) -> float:
        return float(hours_number(self.figures.approved_minutes))


def ranking(review: Review) -> list[RankingRow]:
    """Every candidate with its mean score and figures: by mean score (exactly, as a fraction, so equal means tie),
    then approved hours, then project id; unscored candidates last."""
    candidates = review_candidates(review)
    remarks: dict[int, list[Remark]] = {project.id: [] for project in candidates}
    for pid, name, value, comment in db.session.execute(
            select(ReviewScore.project_id, User.name, ReviewScore.score, ReviewScore.comment)
            .join(User, User.id == ReviewScore.reviewer_id).where(ReviewScore.review_id == review.id)
            .order_by(ReviewScore.project_id, User.name, User.id)):
        remarks[pid].append(Remark(name, value, comment))
    figures = project_figures([p.id for p in candidates])

    def mean(project: Project) -> Fraction | None:
        scores = [remark.score for remark in remarks[project.id]]
        return Fraction(sum(scores), len(scores)) if scores else None

    def key(project: Project):
        score = mean(project)
        return (score is None, -(score or 0), -figures[project.id].approved_minutes, project.id)

    rows = []
    for rank, project in enumerate(sorted(candidates, key=key), start=1):
        score = mean(project)
        rows.append(RankingRow(rank=rank, project=project, mean_score=None if score is None else round(float(score), 2),
                               scores=len(remarks[project.id]), figures=figures[project.id],
                               remarks=remarks[project.id]))
    return rows


def review_candidates(review: Review) -> list[Project]:
    return list(db.session.scalars(select(Project).join(ReviewCandidate, ReviewCandidate.project_id == Project.id)
                                   .where(ReviewCandidate.review_id == review.id).order_by(Project.id)))


def review_reviewers(review: Review) -> list[User]:
    return list(db.session.scalars(select(User).join(ReviewReviewer, ReviewReviewer.user_id == User.id)
                                   .where(ReviewReviewer.review_id == review.id).order_by(User.name, User.id)))
