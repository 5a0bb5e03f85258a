"""The project and claim rules of SPEC 2.1, through the services: who gets a place, the waitlist and its order,
the limits on a volunteer, cancellation and promotion, no-shows and suspension, and who may do what."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, func, select, update

from credits.errors import DomainError
from credits.extensions import db
from credits.projects import services
from credits.projects.models import Claim, ClaimStatus, Project, ProjectStatus
from credits.timeutil import utcnow


def project_data(**overrides) -> dict:
    now = utcnow()
    data = {"title": "健康加油站", "category": "健康", "location": "镇卫生院", "description": "测血压",
            "starts_at": now + timedelta(days=2), "ends_at": now + timedelta(days=2, hours=3),
            "capacity": 2, "waitlist_capacity": 2}
    data.update(overrides)
    return data


def refused(fn, *args, **kwargs) -> DomainError:
    """The DomainError a service raises; rolled back afterwards, as the view would."""
    with pytest.raises(DomainError) as info:
        fn(*args, **kwargs)
    db.session.rollback()
    return info.value


def claim(project: Project, volunteer) -> Claim:
    new = services.claim(project, volunteer=volunteer)
    db.session.commit()
    return new


def cancel(claim_: Claim, volunteer) -> Claim:
    cancelled = services.cancel_claim(claim_, actor=volunteer)
    db.session.commit()
    return cancelled


def set_times(project: Project, **values) -> None:
    """Move a project in time directly in the database (the services only allow sensible edits)."""
    db.session.execute(update(Project).where(Project.id == project.id).values(**values))
    db.session.commit()
    db.session.refresh(project)


def start(project: Project) -> None:
    now = utcnow()
    set_times(project, starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=2))


def end(project: Project) -> None:
    now = utcnow()
    set_times(project, starts_at=now - timedelta(hours=3), ends_at=now - timedelta(hours=1))


def rows_by_status(project: Project) -> dict[str, int]:
    return dict(db.session.execute(
        select(Claim.status, func.count()).where(Claim.project_id == project.id).group_by(Claim.status)).all())


def assert_counters_match_rows(project: Project) -> None:
    """The counters are the claim rows; a no-show keeps the place it took (nobody else could have had it)."""
    db.session.refresh(project)
    rows = rows_by_status(project)
    assert project.confirmed_count == rows.get(ClaimStatus.CONFIRMED, 0) + rows.get(ClaimStatus.NO_SHOW, 0)
    assert project.waitlist_count == rows.get(ClaimStatus.WAITLISTED, 0)
    assert project.confirmed_count <= project.capacity
    assert project.waitlist_count <= project.waitlist_capacity


@pytest.fixture
def org(make_org):
    return make_org("镇团委")


@pytest.fixture
def coordinator(make_user, org):
    return make_user("coordinator", name="协调员", organization=org)


@pytest.fixture
def outsider(make_user, make_org):
    """A coordinator of another organisation."""
    return make_user("coordinator", name="别家协调员", organization=make_org("另一家企业"))


@pytest.fixture
def volunteers(make_user):
    def factory(n: int) -> list:
        return [make_user(name=f"志愿者{i}") for i in range(n)]

    return factory


@pytest.fixture
def draft(coordinator):
    def factory(**overrides) -> Project:
        project = services.create_project(project_data(**overrides), actor=coordinator)
        db.session.commit()
        return project

    return factory


@pytest.fixture
def open_project(draft, coordinator):
    """A published project open for claims now."""

    def factory(**overrides) -> Project:
        project = draft(**overrides)
        services.publish(project, actor=coordinator, publish_at=utcnow() - timedelta(minutes=1))
        db.session.commit()
        return project

    return factory


# --- who gets a place -------------------------------------------------------------------------------


def test_claims_are_confirmed_while_places_remain_then_waitlisted_in_order_then_refused_full(
        open_project, volunteers):
    project = open_project(capacity=2, waitlist_capacity=2)
    a, b, c, d, e = volunteers(5)

    outcomes = [claim(project, v) for v in (a, b, c, d)]

    assert [x.status for x in outcomes] == ["confirmed", "confirmed", "waitlisted", "waitlisted"]
    assert [services.waitlist_position(x) for x in outcomes] == [None, None, 1, 2]
    assert outcomes[0].confirmed_at is not None and outcomes[2].confirmed_at is None
    error = refused(services.claim, project, volunteer=e)
    assert (error.code, error.status) == ("project_full", 409)
    assert_counters_match_rows(project)
    assert (project.confirmed_count, project.waitlist_count) == (2, 2)


def test_project_without_a_waitlist_refuses_once_its_places_are_taken(open_project, volunteers):
    project = open_project(capacity=1, waitlist_capacity=0)
    a, b = volunteers(2)

    assert claim(project, a).status == "confirmed"
    assert refused(services.claim, project, volunteer=b).code == "project_full"


def test_a_retry_after_the_project_filled_is_told_it_already_holds_a_place(open_project, volunteers):
    project = open_project(capacity=1, waitlist_capacity=0)
    a, b = volunteers(2)
    claim(project, a)  # its reply lost on the way, say

    assert refused(services.claim, project, volunteer=a).code == "already_claimed"
    assert refused(services.claim, project, volunteer=b).code == "project_full"


def test_a_claim_by_id_on_a_full_project_is_refused_by_one_read_without_a_lock_or_a_write(
        open_project, volunteers, draft):
    project = open_project(capacity=1, waitlist_capacity=1)
    a, b, c = volunteers(3)
    claim(project, a)
    claim(project, b)  # waitlisted: both counters full now
    statements = []

    def seen(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        for volunteer, code in ((a, "already_claimed"), (b, "already_claimed"), (c, "project_full")):
            project_id, _ = project.id, volunteer.roles  # loaded already, as the API's bearer user is
            statements.clear()
            assert refused(services.claim_by_id, project_id, volunteer=volunteer).code == code
            sql = [s.upper() for s in statements if not s.upper().startswith(("BEGIN", "ROLLBACK", "SAVEPOINT"))]
            assert len(sql) == 1 and sql[0].lstrip().startswith("SELECT"), statements
            assert "FOR UPDATE" not in sql[0]
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    assert_counters_match_rows(project)
    assert rows_by_status(project) == {"confirmed": 1, "waitlisted": 1}
    # Not full, not open, or no such project: the whole path, with its own answers.
    assert services.claim_by_id(open_project(capacity=1, waitlist_capacity=0).id, volunteer=c).status == "confirmed"
    db.session.commit()
    assert refused(services.claim_by_id, draft().id, volunteer=c).code == "not_open"
    assert refused(services.claim_by_id, 10**9, volunteer=c).code == "not_found"


def test_waitlist_capacity_defaults_to_the_capacity(draft):
    project = draft(capacity=7, waitlist_capacity=None)
    assert project.waitlist_capacity == 7


def test_a_volunteer_holds_one_live_claim_per_project(open_project, volunteers):
    project = open_project(capacity=1, waitlist_capacity=2)
    a, b = volunteers(2)
    claim(project, a)
    claim(project, b)  # waitlisted

    assert refused(services.claim, project, volunteer=a).code == "already_claimed"
    assert refused(services.claim, project, volunteer=b).code == "already_claimed"
    assert_counters_match_rows(project)
    assert (project.confirmed_count, project.waitlist_count) == (1, 1)


def test_a_volunteer_may_claim_again_after_cancelling(open_project, volunteers):
    project = open_project(capacity=2)
    (a,) = volunteers(1)
    first = claim(project, a)
    cancel(first, a)

    again = claim(project, a)

    assert again.id != first.id and again.status == "confirmed"
    assert rows_by_status(project) == {"cancelled": 1, "confirmed": 1}
    assert_counters_match_rows(project)


# --- limits on a volunteer --------------------------------------------------------------------------


def test_claim_limit_is_three_confirmed_claims_on_projects_not_yet_ended(open_project, volunteers):
    (a,) = volunteers(1)
    held = [open_project() for _ in range(3)]
    for project in held:
        claim(project, a)
    fourth = open_project()

    error = refused(services.claim, fourth, volunteer=a)
    assert (error.code, error.status) == ("claim_limit", 409)

    end(held[0])
    assert claim(fourth, a).status == "confirmed"


def test_waitlisted_and_cancelled_claims_do_not_count_toward_the_claim_limit(open_project, volunteers):
    a, b = volunteers(2)
    full = open_project(capacity=1, waitlist_capacity=1)
    claim(full, b)
    assert claim(full, a).status == "waitlisted"
    cancelled = claim(open_project(), a)
    cancel(cancelled, a)
    claim(open_project(), a)
    claim(open_project(), a)

    assert claim(open_project(), a).status == "confirmed"  # the third confirmed one
    assert refused(services.claim, open_project(), volunteer=a).code == "claim_limit"


def test_claim_limit_follows_the_policy(open_project, volunteers, set_policy):
    set_policy(max_active_claims=1)
    (a,) = volunteers(1)
    claim(open_project(), a)

    assert refused(services.claim, open_project(), volunteer=a).code == "claim_limit"


# --- open for claims --------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["draft", "closed", "cancelled", "ended", "draft_with_publish_at"])
def test_claiming_a_project_that_is_not_open_is_refused_not_open(state, draft, coordinator, volunteers):
    (a,) = volunteers(1)
    project = draft(publish_at=utcnow() - timedelta(hours=1) if state == "draft_with_publish_at" else None)
    if state in ("closed", "cancelled", "ended"):
        services.publish(project, actor=coordinator)
        db.session.commit()
    if state == "closed":
        services.close(project, actor=coordinator)
    elif state == "cancelled":
        services.cancel_project(project, actor=coordinator)
    db.session.commit()
    if state == "ended":
        end(project)

    error = refused(services.claim, project, volunteer=a)

    assert (error.code, error.status) == ("not_open", 409)
    assert error.details.get("opens_at") is None
    assert rows_by_status(project) == {}


def test_claiming_before_publish_at_is_refused_with_the_opening_time(draft, coordinator, volunteers):
    (a,) = volunteers(1)
    project = draft()
    opens = utcnow() + timedelta(minutes=5)
    services.publish(project, actor=coordinator, publish_at=opens)
    db.session.commit()

    error = refused(services.claim, project, volunteer=a)

    assert error.code == "not_open"
    assert error.details["opens_at"] == opens.isoformat()

    set_times(project, publish_at=utcnow() - timedelta(seconds=1))
    assert claim(project, a).status == "confirmed"


def test_a_started_project_takes_claims_until_it_ends(open_project, volunteers):
    project = open_project()
    start(project)
    (a,) = volunteers(1)

    assert claim(project, a).status == "confirmed"


def test_closing_stops_new_claims_and_keeps_existing_ones(open_project, coordinator, volunteers):
    project = open_project()
    a, b = volunteers(2)
    held = claim(project, a)
    services.close(project, actor=coordinator)
    db.session.commit()

    assert refused(services.claim, project, volunteer=b).code == "not_open"
    db.session.refresh(held)
    assert held.status == "confirmed"


# --- cancellation and promotion ---------------------------------------------------------------------


def test_cancelling_before_start_frees_the_place_for_the_first_waitlisted(open_project, volunteers):
    project = open_project(capacity=2, waitlist_capacity=3)
    a, b, c, d, e = volunteers(5)
    ca, _, cc, cd, ce = [claim(project, v) for v in (a, b, c, d, e)]

    cancel(ca, a)

    for x in (ca, cc, cd, ce):
        db.session.refresh(x)
    assert ca.status == "cancelled" and ca.cancelled_at is not None
    assert cc.status == "confirmed" and cc.confirmed_at is not None
    assert [services.waitlist_position(x) for x in (cd, ce)] == [1, 2]
    assert_counters_match_rows(project)
    assert (project.confirmed_count, project.waitlist_count) == (2, 2)


def test_cancelling_a_waitlisted_claim_moves_those_behind_it_up(open_project, volunteers):
    project = open_project(capacity=1, waitlist_capacity=3)
    a, b, c, d = volunteers(4)
    _, cb, cc, cd = [claim(project, v) for v in (a, b, c, d)]

    cancel(cb, b)

    db.session.refresh(cc)
    assert cc.status == "waitlisted"
    assert [services.waitlist_position(x) for x in (cc, cd)] == [1, 2]
    assert_counters_match_rows(project)
    assert (project.confirmed_count, project.waitlist_count) == (1, 2)


def test_a_freed_place_can_be_claimed_when_nobody_waits(open_project, volunteers):
    project = open_project(capacity=1, waitlist_capacity=0)
    a, b = volunteers(2)
    cancel(claim(project, a), a)

    assert claim(project, b).status == "confirmed"
    assert_counters_match_rows(project)


def test_cancelling_after_the_start_is_refused(open_project, volunteers):
    project = open_project()
    (a,) = volunteers(1)
    held = claim(project, a)
    start(project)

    error = refused(services.cancel_claim, held, actor=a)

    assert (error.code, error.status) == ("invalid_state", 409)
    db.session.refresh(held)
    assert held.status == "confirmed"
    assert_counters_match_rows(project)


def test_cancelling_twice_is_refused(open_project, volunteers):
    project = open_project()
    (a,) = volunteers(1)
    held = claim(project, a)
    cancel(held, a)

    assert refused(services.cancel_claim, held, actor=a).code == "invalid_state"
    assert_counters_match_rows(project)


def test_only_the_claimant_may_cancel_a_claim(open_project, volunteers, coordinator):
    project = open_project()
    a, b = volunteers(2)
    held = claim(project, a)

    assert refused(services.cancel_claim, held, actor=b).code == "forbidden"
    assert refused(services.cancel_claim, held, actor=coordinator).code == "forbidden"


# --- no-shows and suspension ------------------------------------------------------------------------


def test_no_show_is_marked_after_the_start_by_the_organisers_coordinator(open_project, volunteers, coordinator):
    project = open_project()
    (a,) = volunteers(1)
    held = claim(project, a)
    assert refused(services.mark_no_show, held, actor=coordinator).code == "invalid_state"  # not started yet

    start(project)
    services.mark_no_show(held, actor=coordinator)
    db.session.commit()

    db.session.refresh(held)
    assert held.status == "no_show" and held.no_show_at is not None
    assert_counters_match_rows(project)


def test_no_show_by_anyone_but_the_organisers_coordinator_is_forbidden(open_project, volunteers, outsider):
    project = open_project()
    a, b = volunteers(2)
    held = claim(project, a)
    start(project)

    for actor in (outsider, a, b):
        assert refused(services.mark_no_show, held, actor=actor).code == "forbidden"
    db.session.refresh(held)
    assert held.status == "confirmed"


def test_only_confirmed_claims_can_be_marked_no_show(open_project, volunteers, coordinator):
    project = open_project(capacity=1, waitlist_capacity=1)
    a, b = volunteers(2)
    claim(project, a)
    waiting = claim(project, b)
    start(project)

    assert refused(services.mark_no_show, waiting, actor=coordinator).code == "invalid_state"


@pytest.fixture
def no_shows(draft, coordinator):
    """Give a volunteer no-shows that happened the given numbers of days ago (set directly in the database)."""

    def factory(volunteer, days_ago: list[float]) -> list[Claim]:
        now = utcnow()
        claims = []
        for _ in days_ago:
            project = draft(starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=2))
            services.publish(project, actor=coordinator)
            held = claim(project, volunteer)
            services.mark_no_show(held, actor=coordinator)
            held.no_show_at = now - timedelta(days=365)  # out of the way until all are claimed
            db.session.commit()
            claims.append(held)
        for held, days in zip(claims, days_ago, strict=True):
            held.no_show_at = now - timedelta(days=days)
        db.session.commit()
        return claims

    return factory


def test_three_no_shows_within_ninety_days_suspend_claiming_for_thirty_days(no_shows, open_project, volunteers):
    (a,) = volunteers(1)
    last = no_shows(a, [80, 40, 10])[-1]

    error = refused(services.claim, open_project(), volunteer=a)

    assert (error.code, error.status) == ("suspended", 409)
    assert error.details["until"] == (last.no_show_at + timedelta(days=30)).isoformat()


def test_two_no_shows_do_not_suspend(no_shows, open_project, volunteers):
    (a,) = volunteers(1)
    no_shows(a, [5, 1])

    assert claim(open_project(), a).status == "confirmed"


def test_no_shows_older_than_ninety_days_do_not_count(no_shows, open_project, volunteers):
    (a,) = volunteers(1)
    no_shows(a, [100, 20, 5])

    assert claim(open_project(), a).status == "confirmed"


def test_suspension_ends_thirty_days_after_the_last_no_show(no_shows, open_project, volunteers):
    (a,) = volunteers(1)
    no_shows(a, [60, 45, 31])

    assert claim(open_project(), a).status == "confirmed"


def test_a_further_no_show_does_not_lift_a_running_suspension(no_shows, open_project, volunteers):
    (a,) = volunteers(1)
    # 100, 99 and 12 days ago lie within 90 days: suspended until 18 days from now. The latest three (99, 12
    # and 1 day ago) span more than 90 days, which must not cut that suspension short.
    no_shows(a, [100, 99, 12, 1])

    assert refused(services.claim, open_project(), volunteer=a).code == "suspended"


def test_no_show_limit_follows_the_policy(no_shows, open_project, volunteers, set_policy):
    set_policy(no_show_limit=1)
    (a,) = volunteers(1)
    no_shows(a, [3])

    assert refused(services.claim, open_project(), volunteer=a).code == "suspended"


# --- capacity edits and project cancellation --------------------------------------------------------


def test_capacity_cannot_drop_below_the_confirmed_claims(open_project, volunteers, coordinator):
    project = open_project(capacity=3, waitlist_capacity=2)
    for v in volunteers(3):
        claim(project, v)

    error = refused(services.update_project, project, {"capacity": 2}, actor=coordinator)

    assert (error.status, error.code) == (422, "validation_error")
    assert "capacity" in error.fields
    db.session.refresh(project)
    assert project.capacity == 3


def test_waitlist_capacity_cannot_drop_below_the_waitlisted_claims(open_project, volunteers, coordinator):
    project = open_project(capacity=1, waitlist_capacity=3)
    for v in volunteers(3):
        claim(project, v)

    error = refused(services.update_project, project, {"waitlist_capacity": 1}, actor=coordinator)

    assert error.status == 422 and "waitlist_capacity" in error.fields
    services.update_project(project, {"waitlist_capacity": 2}, actor=coordinator)
    db.session.commit()
    assert_counters_match_rows(project)


def test_raising_the_capacity_of_a_published_project_promotes_the_waitlist_in_order(
        open_project, volunteers, coordinator):
    project = open_project(capacity=1, waitlist_capacity=3)
    _, cb, cc, cd = [claim(project, v) for v in volunteers(4)]

    services.update_project(project, {"capacity": 3}, actor=coordinator)
    db.session.commit()

    for x in (cb, cc, cd):
        db.session.refresh(x)
    assert [x.status for x in (cb, cc, cd)] == ["confirmed", "confirmed", "waitlisted"]
    assert services.waitlist_position(cd) == 1
    assert_counters_match_rows(project)
    assert (project.confirmed_count, project.waitlist_count) == (3, 1)


def test_capacity_may_drop_to_exactly_the_confirmed_claims(open_project, volunteers, coordinator):
    project = open_project(capacity=4)
    for v in volunteers(2):
        claim(project, v)

    services.update_project(project, {"capacity": 2}, actor=coordinator)
    db.session.commit()

    assert project.capacity == 2 and project.places_left == 0


def test_a_published_project_keeps_its_period(open_project, coordinator):
    project = open_project()

    error = refused(services.update_project, project, {"starts_at": utcnow() + timedelta(days=1)},
                    actor=coordinator)

    assert error.code == "invalid_state"


def test_a_period_ending_before_it_starts_is_refused(draft, coordinator):
    now = utcnow()
    error = refused(services.create_project, project_data(starts_at=now + timedelta(days=1), ends_at=now),
                    actor=coordinator)
    assert error.status == 422 and "ends_at" in error.fields

    project = draft()
    error = refused(services.update_project, project, {"ends_at": project.starts_at - timedelta(hours=1)},
                    actor=coordinator)
    assert error.status == 422 and "ends_at" in error.fields


def test_cancelling_a_project_cancels_its_live_claims(open_project, volunteers, coordinator):
    project = open_project(capacity=2, waitlist_capacity=2)
    held = [claim(project, v) for v in volunteers(4)]

    services.cancel_project(project, actor=coordinator)
    db.session.commit()

    db.session.refresh(project)
    assert project.status == ProjectStatus.CANCELLED
    assert rows_by_status(project) == {"cancelled": 4}
    assert all(db.session.get(Claim, x.id).cancelled_at is not None for x in held)
    assert_counters_match_rows(project)
    assert refused(services.cancel_project, project, actor=coordinator).code == "invalid_state"


# --- who may do what --------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["update", "publish", "close", "cancel", "roster"])
def test_a_coordinator_of_another_organisation_cannot_manage_the_project(operation, draft, coordinator,
                                                                          outsider):
    project = draft()
    if operation in ("close", "cancel", "roster"):
        services.publish(project, actor=coordinator)
        db.session.commit()
    calls = {
        "update": lambda: services.update_project(project, {"title": "改名"}, actor=outsider),
        "publish": lambda: services.publish(project, actor=outsider),
        "close": lambda: services.close(project, actor=outsider),
        "cancel": lambda: services.cancel_project(project, actor=outsider),
        "roster": lambda: services.roster(project, actor=outsider),
    }

    error = refused(calls[operation])

    assert (error.code, error.status) == ("forbidden", 403)
    assert db.session.get(Project, project.id).title == "健康加油站"


def test_a_coordinator_of_another_organisation_cannot_see_its_draft(draft, outsider, coordinator):
    project = draft()

    assert refused(services.get_project, project.id, viewer=outsider).code == "not_found"
    assert services.get_project(project.id, viewer=coordinator) is project


def test_only_coordinators_with_an_organisation_create_projects(make_user):
    volunteer = make_user()
    loner = make_user("coordinator")

    assert refused(services.create_project, project_data(), actor=volunteer).code == "forbidden"
    assert refused(services.create_project, project_data(), actor=loner).code == "invalid_state"


@pytest.mark.parametrize("roles", [("coordinator",), ("merchant",), ("admin",)])
def test_nobody_without_the_volunteer_role_can_claim(roles, open_project, make_user, org):
    project = open_project()
    user = make_user(*roles, organization=org)

    assert refused(services.claim, project, volunteer=user).code == "forbidden"
    assert rows_by_status(project) == {}


def test_a_coordinator_who_also_volunteers_can_claim(open_project, make_user, org):
    project = open_project()
    user = make_user("coordinator", "volunteer", organization=org)

    assert claim(project, user).status == "confirmed"


def test_promotion_passes_over_a_volunteer_at_the_claim_cap_who_keeps_waiting(open_project, volunteers, set_policy,
                                                                              coordinator):
    """A waitlisted volunteer who meanwhile reached max_active_claims elsewhere is not promoted past it (4 of 3
    once): the next in line is, and the one passed over is promoted by a later free place once below the cap."""
    set_policy(max_active_claims=2)
    busy, other, holder = volunteers(3)
    project = open_project(capacity=1, waitlist_capacity=3)
    held = claim(project, holder)
    queued = claim(project, busy)
    behind = claim(project, other)
    elsewhere = [claim(open_project(), busy) for _ in range(2)]  # now at the cap of 2
    assert [c.status for c in elsewhere] == ["confirmed", "confirmed"]

    cancel(held, holder)

    for x in (queued, behind):
        db.session.refresh(x)
    assert (queued.status, behind.status) == ("waitlisted", "confirmed")
    assert services.active_claims(busy, utcnow()) == 2
    assert_counters_match_rows(project)

    cancel(elsewhere[0], busy)  # below the cap again; the next free place is theirs, first in line
    services.update_project(project, {"capacity": 2}, actor=coordinator)
    db.session.commit()
    db.session.refresh(queued)
    assert queued.status == "confirmed"
    assert_counters_match_rows(project)
