"""The review every review test starts from: 健康加油站 (3 hours, 2 volunteers, 1 no-show) as the candidate of its
year's review, with 王评审 invited."""

from __future__ import annotations

import pytest

from tests.reviews.helpers import add, invite, local_year, open_review, project_with


@pytest.fixture
def judge(make_user, org):
    """A second coordinator, invited as a reviewer."""
    return make_user("coordinator", name="王评审", organization=org)


@pytest.fixture
def health(coordinator, make_user):
    return project_with(coordinator, make_user, title="健康加油站", minutes=[120, 60], no_shows=1, capacity=4)


@pytest.fixture
def review(coordinator, judge, health):
    made = open_review(coordinator, local_year(health), title="2026年度优秀服务项目评审")
    add(made, health, actor=coordinator)
    invite(made, judge, actor=coordinator)
    return made
