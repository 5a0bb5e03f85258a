"""Shared set-up for the review tests: projects with known approved hours, no-shows and places, a review of
their year with reviewers invited."""

from __future__ import annotations

import itertools

from credits.extensions import db
from credits.projects import services as projects
from credits.projects.models import Project
from credits.reviews import services as reviews
from credits.reviews.models import Review
from credits.timeutil import local_zone
from tests.hours.helpers import approve, confirmed_claim, file, slot, started_project

_names = itertools.count(1)


def local_year(project: Project) -> int:
    return project.starts_at.astimezone(local_zone()).year


def project_with(coordinator, make_user, *, title: str, minutes: list[int] = (), no_shows: int = 0,
                 capacity: int = 10) -> Project:
    """A published project that started ten days ago: one volunteer per entry of `minutes` with that much approved
    service, and `no_shows` volunteers marked absent."""
    project = started_project(coordinator, title=title, days_ago=10, capacity=capacity)
    for amount in minutes:
        volunteer = make_user("volunteer", name=f"志愿者{next(_names)}")
        approve(file(confirmed_claim(project, volunteer), volunteer, slot(3, amount)), coordinator)
    for _ in range(no_shows):
        absent = confirmed_claim(project, make_user("volunteer", name=f"缺席者{next(_names)}"))
        projects.mark_no_show(absent, actor=coordinator)
    db.session.commit()
    return project


def open_review(coordinator, year: int, title: str = "2026年度优秀服务项目评审") -> Review:
    review = reviews.open_review(year, title, by=coordinator)
    db.session.commit()
    return review


def add(review: Review, *candidates: Project, actor) -> None:
    reviews.add_candidates(review, [p.id for p in candidates], actor=actor)
    db.session.commit()


def invite(review: Review, *people, actor) -> None:
    reviews.invite_reviewers(review, [p.id for p in people], actor=actor)
    db.session.commit()


def give_score(review: Review, project: Project, value: int, reviewer, comment: str = "") -> None:
    reviews.score(review, project, value, comment, reviewer=reviewer)
    db.session.commit()
