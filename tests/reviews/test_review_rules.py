"""The annual review's rules, through the services: who may do what, which projects may stand, scores 0–100 that a
second scoring replaces, a closed review that changes no more, and the ranking's order."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from credits.auth.models import AuditEvent
from credits.errors import Forbidden, InvalidInput, InvalidState, NotFound
from credits.extensions import db
from credits.projects import services as projects
from credits.projects.models import Project
from credits.reviews import services as reviews
from credits.reviews.models import ReviewScore
from credits.timeutil import local_zone, utcnow
from tests.hours.helpers import started_project
from tests.reviews.helpers import add, give_score, invite, local_year, open_review, project_with


def scores_of(review) -> list[tuple[int, int, int]]:
    return db.session.execute(select(ReviewScore.project_id, ReviewScore.reviewer_id, ReviewScore.score)
                              .where(ReviewScore.review_id == review.id)).all()


def test_only_coordinators_open_reviews(volunteer):
    with pytest.raises(Forbidden):
        reviews.open_review(2026, "评审", by=volunteer)


def test_opening_a_review_is_audited(coordinator):
    review = open_review(coordinator, 2026)
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "review.open")).one()
    assert (event.actor_id, event.object_id, event.details["year"]) == (coordinator.id, str(review.id), 2026)
    assert review.status == "open"


def test_candidates_must_start_in_the_reviews_year(coordinator, health):
    review = open_review(coordinator, local_year(health) - 1)
    with pytest.raises(InvalidState) as refused:
        reviews.add_candidates(review, [health.id], actor=coordinator)
    assert refused.value.fields == {"project_ids": [health.id]}


def test_the_year_is_the_towns_local_year(coordinator):
    """2026-01-01 00:30 in Shanghai is still 2025 in UTC, and 2025-12-31 23:30 there is 15:30 UTC the same day."""
    made = {}
    for title, start in (("新年义诊", datetime(2026, 1, 1, 0, 30, tzinfo=local_zone())),
                         ("除夕守岁", datetime(2025, 12, 31, 23, 30, tzinfo=local_zone()))):
        # Held long ago: creating it now would be refused as back-dated, so it is stored as the past left it.
        project = Project(title=title, category="健康", location="镇卫生院", starts_at=start,
                          ends_at=start + timedelta(hours=2), capacity=5, waitlist_capacity=5, block_minutes=60,
                          coins_per_block=1, organization_id=coordinator.organization_id,
                          created_by_id=coordinator.id, status="closed")
        db.session.add(project)
        db.session.flush()
        made[title] = project.id
    db.session.commit()
    for year, title in ((2026, "新年义诊"), (2025, "除夕守岁")):
        eligible = db.session.scalars(reviews.eligible_projects(open_review(coordinator, year))).all()
        assert [p.id for p in eligible] == [made[title]]


def test_draft_and_cancelled_projects_cannot_stand(coordinator, make_user):
    draft = projects.create_project({"title": "草稿项目", "category": "健康", "location": "镇", "capacity": 3,
                                     "starts_at": utcnow() - timedelta(days=2),
                                     "ends_at": utcnow() - timedelta(days=1)}, actor=coordinator)
    cancelled = started_project(coordinator, title="取消的项目", days_ago=5)
    projects.cancel_project(cancelled, actor=coordinator)
    db.session.commit()
    review = open_review(coordinator, local_year(cancelled))
    for project in (draft, cancelled):
        with pytest.raises(InvalidState):
            reviews.add_candidates(review, [project.id], actor=coordinator)
        db.session.rollback()
    assert reviews.review_candidates(review) == []


def test_unknown_projects_are_a_validation_error_and_add_nothing(coordinator, health):
    review = open_review(coordinator, local_year(health))
    with pytest.raises(InvalidInput) as refused:
        reviews.add_candidates(review, [health.id, 999999], actor=coordinator)
    assert "999999" in refused.value.fields["project_ids"][0]
    db.session.rollback()
    assert reviews.review_candidates(review) == []


def test_adding_a_candidate_twice_keeps_one(coordinator, review, health):
    assert reviews.add_candidates(review, [health.id], actor=coordinator) == []
    db.session.commit()
    assert [p.id for p in reviews.review_candidates(review)] == [health.id]


def test_only_active_coordinators_can_be_invited(coordinator, review, volunteer, make_user):
    retired = make_user("coordinator", name="退休协调")
    retired.is_active_user = False
    db.session.commit()
    for person in (volunteer, retired):
        with pytest.raises(InvalidState) as refused:
            reviews.invite_reviewers(review, [person.id], actor=coordinator)
        assert refused.value.fields == {"user_ids": [person.id]}
        db.session.rollback()
    with pytest.raises(InvalidInput):
        reviews.invite_reviewers(review, [999999], actor=coordinator)


def test_an_invited_reviewer_scores_a_candidate(review, health, judge):
    give_score(review, health, 88, judge, "组织有序，服务人次多")
    assert scores_of(review) == [(health.id, judge.id, 88)]
    assert reviews.scores_by(review, judge)[health.id].comment == "组织有序，服务人次多"


def test_scoring_twice_updates_the_one_score(review, health, judge):
    give_score(review, health, 70, judge, "初评")
    first = reviews.scores_by(review, judge)[health.id]
    created, updated = first.created_at, first.updated_at
    give_score(review, health, 92, judge, "复核后上调")
    assert scores_of(review) == [(health.id, judge.id, 92)]
    again = reviews.scores_by(review, judge)[health.id]
    assert again.comment == "复核后上调" and again.created_at == created and again.updated_at >= updated
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "review.score")
                                .order_by(AuditEvent.id)).all()
    assert [(e.details["score"], e.details["previous"]) for e in events] == [(70, None), (92, 70)]


@pytest.mark.parametrize("value", [-1, 101, 1000])
def test_scores_outside_0_to_100_are_refused(review, health, judge, value):
    with pytest.raises(InvalidInput) as refused:
        reviews.score(review, health, value, "", reviewer=judge)
    assert refused.value.status == 422 and "score" in refused.value.fields


@pytest.mark.parametrize("value", [0, 100])
def test_the_ends_of_the_scale_are_allowed(review, health, judge, value):
    give_score(review, health, value, judge)
    assert scores_of(review) == [(health.id, judge.id, value)]


def test_a_coordinator_not_invited_cannot_score(review, health, coordinator):
    with pytest.raises(Forbidden):
        reviews.score(review, health, 80, "", reviewer=coordinator)


def test_a_project_that_is_not_a_candidate_cannot_be_scored(review, judge, coordinator, make_user):
    other = project_with(coordinator, make_user, title="变废为宝")
    with pytest.raises(NotFound):
        reviews.score(review, other, 80, "", reviewer=judge)


def test_a_closed_review_refuses_every_change(review, health, judge, coordinator, make_user):
    give_score(review, health, 80, judge)
    reviews.close_review(review, actor=coordinator)
    db.session.commit()
    assert review.status == "closed" and review.closed_at is not None
    other = project_with(coordinator, make_user, title="变废为宝")
    attempts = [lambda: reviews.score(review, health, 90, "", reviewer=judge),
                lambda: reviews.add_candidates(review, [other.id], actor=coordinator),
                lambda: reviews.remove_candidate(review, health.id, actor=coordinator),
                lambda: reviews.invite_reviewers(review, [coordinator.id], actor=coordinator),
                lambda: reviews.close_review(review, actor=coordinator)]
    for attempt in attempts:
        with pytest.raises(InvalidState) as refused:
            attempt()
        assert refused.value.status == 409
        db.session.rollback()
    assert scores_of(review) == [(health.id, judge.id, 80)]


def test_removing_a_candidate_removes_its_scores(review, health, judge, coordinator):
    give_score(review, health, 75, judge)
    reviews.remove_candidate(review, health.id, actor=coordinator)
    db.session.commit()
    assert reviews.review_candidates(review) == [] and scores_of(review) == []
    with pytest.raises(NotFound):
        reviews.remove_candidate(review, health.id, actor=coordinator)


def test_the_database_refuses_a_score_out_of_range_or_by_someone_not_invited(review, health, coordinator):
    """The schema's own guards, should a caller bypass the service."""
    from sqlalchemy.exc import IntegrityError

    for row in (dict(reviewer_id=review.reviewers[0].user_id, score=101),
                dict(reviewer_id=coordinator.id, score=50)):
        db.session.add(ReviewScore(review_id=review.id, project_id=health.id, comment="", **row))
        with pytest.raises(IntegrityError):
            db.session.flush()
        db.session.rollback()


def test_ranking_orders_by_mean_then_hours_then_unscored_last(coordinator, make_user, judge, health):
    second = make_user("coordinator", name="赵评审")
    year = local_year(health)
    busy = project_with(coordinator, make_user, title="变废为宝", minutes=[240, 180])  # 7 h
    quiet = project_with(coordinator, make_user, title="啄木鸟行动", minutes=[60])  # 1 h
    unscored = project_with(coordinator, make_user, title="敬老助餐", minutes=[600])  # most hours, no score
    top = project_with(coordinator, make_user, title="垃圾分类宣传")
    review = open_review(coordinator, year)
    add(review, health, busy, quiet, unscored, top, actor=coordinator)
    invite(review, judge, second, actor=coordinator)
    # health (3 h) and busy (7 h) and quiet (1 h) all average 85; top averages 95.
    for project, a, b in ((health, 80, 90), (busy, 85, 85), (quiet, 90, 80), (top, 100, 90)):
        give_score(review, project, a, judge)
        give_score(review, project, b, second)
    rows = reviews.ranking(review)
    assert [r.project.title for r in rows] == ["垃圾分类宣传", "变废为宝", "健康加油站", "啄木鸟行动", "敬老助餐"]
    assert [r.rank for r in rows] == [1, 2, 3, 4, 5]
    assert [r.mean_score for r in rows] == [95.0, 85.0, 85.0, 85.0, None]
    assert [r.scores for r in rows] == [2, 2, 2, 2, 0]
    by_title = {r.project.title: r for r in rows}
    assert by_title["健康加油站"].figures.approved_minutes == 180
    assert by_title["健康加油站"].figures.volunteers == 2
    assert by_title["健康加油站"].figures.no_shows == 1
    assert by_title["健康加油站"].approved_hours == 3.0
    assert [(r.reviewer, r.score) for r in by_title["健康加油站"].remarks] == sorted(
        [("王评审", 80), ("赵评审", 90)])


def test_equal_means_of_different_fractions_tie_exactly(coordinator, make_user, judge):
    """Means are compared as fractions: 1/3 + 1/3 + 1/3 must not lose to 1 by a rounding error."""
    people = [judge] + [make_user("coordinator", name=f"评审{i}") for i in range(2)]
    small = project_with(coordinator, make_user, title="小项目", minutes=[30])
    big = project_with(coordinator, make_user, title="大项目", minutes=[300])
    review = open_review(coordinator, local_year(small))
    add(review, small, big, actor=coordinator)
    invite(review, *people, actor=coordinator)
    for person, value in zip(people, (70, 71, 72), strict=True):
        give_score(review, small, value, person)  # mean 71
    for person, value in zip(people, (71, 71, 71), strict=True):
        give_score(review, big, value, person)  # mean 71
    assert [r.project.title for r in reviews.ranking(review)] == ["大项目", "小项目"]


def test_every_change_is_audited(review, health, judge, coordinator):
    give_score(review, health, 60, judge)
    reviews.remove_candidate(review, health.id, actor=coordinator)
    reviews.close_review(review, actor=coordinator)
    db.session.commit()
    actions = set(db.session.scalars(select(AuditEvent.action).where(AuditEvent.object_type == "reviews")))
    assert {"review.open", "review.add_candidates", "review.invite", "review.score", "review.remove_candidate",
            "review.close"} <= actions
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action == "review.close")) == 1


def test_another_coordinator_cannot_take_over_a_review(review, health, make_user, make_org, judge):
    """The takeover the review found: a coordinator who did not open the review inviting themselves, scoring,
    removing candidates and closing it. Each is refused and changes nothing."""
    intruder = make_user("coordinator", name="外来者", organization=make_org("别的组织"))
    for attempt in (lambda: reviews.invite_reviewers(review, [intruder.id], actor=intruder),
                    lambda: reviews.score(review, health, 100, reviewer=intruder),
                    lambda: reviews.add_candidates(review, [health.id], actor=intruder),
                    lambda: reviews.remove_candidate(review, health.id, actor=intruder),
                    lambda: reviews.close_review(review, actor=intruder),
                    lambda: reviews.close_review(review, actor=judge)):  # invited to score, not to manage
        with pytest.raises(Forbidden):
            attempt()
        db.session.rollback()
    assert review.status == "open"
    assert not reviews.is_reviewer(review, intruder)
    assert reviews.review_candidates(review) == [health]
    assert scores_of(review) == []


def test_an_admin_manages_any_review_and_each_change_is_audited(review, health, make_user, judge):
    admin = make_user("admin", name="管理员")
    reviews.remove_candidate(review, health.id, actor=admin)
    reviews.close_review(review, actor=admin)
    db.session.commit()
    events = db.session.execute(select(AuditEvent.action, AuditEvent.actor_id)
                                .where(AuditEvent.object_type == "reviews", AuditEvent.actor_id == admin.id)
                                .order_by(AuditEvent.id)).all()
    assert events == [("review.remove_candidate", admin.id), ("review.close", admin.id)]
