"""Scores raced by real threads against the real database (SQLite or PostgreSQL): one reviewer's double taps, every
reviewer at once, and scoring racing the close. Each racer is one unit of work committed by in_transaction."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
from sqlalchemy import select

from credits.auth.models import AuditEvent, User
from credits.extensions import db
from credits.projects.models import Project
from credits.reviews import services as reviews
from credits.reviews.models import Review, ReviewScore
from tests.races import race
from tests.reviews.helpers import add, invite, local_year, open_review, project_with

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("retries")]


def scoring(review_id: int, project_id: int, reviewer_id: int, value: int) -> Callable[[], int]:
    def job() -> int:
        return reviews.score(db.session.get(Review, review_id), db.session.get(Project, project_id), value,
                             f"第{value}分", reviewer=db.session.get(User, reviewer_id)).score

    return job


def closing(review_id: int, actor_id: int) -> Callable[[], str]:
    def job() -> str:
        return reviews.close_review(db.session.get(Review, review_id), actor=db.session.get(User, actor_id)).status

    return job


def scores_of(review_id: int) -> list[ReviewScore]:
    db.session.expire_all()
    return db.session.scalars(select(ReviewScore).where(ReviewScore.review_id == review_id)
                              .order_by(ReviewScore.project_id, ReviewScore.reviewer_id)).all()


@pytest.fixture
def setting(coordinator, make_user, org):
    """A review with two candidates and four invited reviewers."""
    judges = [make_user("coordinator", name=f"评审{i}", organization=org) for i in range(4)]
    candidates = [project_with(coordinator, make_user, title=title) for title in ("健康加油站", "变废为宝")]
    review = open_review(coordinator, local_year(candidates[0]))
    add(review, *candidates, actor=coordinator)
    invite(review, *judges, actor=coordinator)
    return review, candidates, judges


def test_one_reviewer_scoring_a_project_eight_times_at_once_keeps_one_score(app, setting):
    review, (project, _), (judge, *_) = setting
    for round_ in range(3):
        values = [60 + round_ * 10 + i for i in range(8)]
        results, _ = race(app, [scoring(review.id, project.id, judge.id, v) for v in values])
        assert sorted(results) == values, results
        [kept] = scores_of(review.id)
        assert kept.score in values and kept.comment == f"第{kept.score}分"
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "review.score")).all()
    assert len(events) == 24
    assert [e.details["previous"] for e in events].count(None) == 1  # only the very first created the row


def test_every_reviewer_scoring_every_candidate_at_once_gets_one_score_each(app, setting):
    review, candidates, judges = setting
    jobs = [scoring(review.id, p.id, j.id, 50 + i) for i, (p, j) in
            enumerate((p, j) for p in candidates for j in judges)]
    results, _ = race(app, jobs + jobs)  # each pair twice, with the same value
    assert Counter(results) == Counter({50 + i: 2 for i in range(len(jobs))})
    kept = scores_of(review.id)
    assert len(kept) == len(candidates) * len(judges)
    assert len({(s.project_id, s.reviewer_id) for s in kept}) == len(kept)


def test_a_score_racing_the_close_either_lands_before_it_or_is_refused(app, setting, coordinator):
    review, (project, _), judges = setting
    jobs = [scoring(review.id, project.id, j.id, 70 + i) for i, j in enumerate(judges)]
    results, _ = race(app, [*jobs, closing(review.id, coordinator.id)])
    assert results[-1] == "closed"
    landed = [r for r in results[:-1] if r != "invalid_state"]
    assert set(results[:-1]) - set(landed) <= {"invalid_state"}
    db.session.expire_all()
    closed = db.session.get(Review, review.id)
    kept = scores_of(review.id)
    assert sorted(s.score for s in kept) == sorted(landed)
    assert all(s.updated_at <= closed.closed_at for s in kept)
