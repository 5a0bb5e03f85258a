"""Claims raced by real threads (and, on PostgreSQL, processes) against the real database: confirmed never exceeds
capacity, the waitlist never exceeds its capacity, and the counters always equal the claim rows (SPEC 2.1)."""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from credits import create_app
from credits.auth.models import User
from credits.auth.services import issue_token
from credits.config import TestConfig
from credits.extensions import db
from credits.projects import services
from credits.projects.models import Claim, ClaimStatus, Project
from credits.timeutil import utcnow
from tests.conftest import PG_URL
from tests.races import race

pytestmark = pytest.mark.slow

# Wide enough that the racers meet in the database, not in a queue for the connection pool.
RACE_ENGINE = {"pool_size": 30, "max_overflow": 0, "pool_timeout": 60, "pool_pre_ping": True}


def claim_job(project_id: int, volunteer_id: int) -> Callable[[], str]:
    def work() -> str:  # the page's path (the API's is raced through HTTP below)
        volunteer = db.session.get(User, volunteer_id)
        return services.claim_by_id(project_id, volunteer=volunteer).status

    return work


def cancel_job(claim_id: int, volunteer_id: int) -> Callable[[], str]:
    def work() -> str:
        held = db.session.get(Claim, claim_id)
        volunteer = db.session.get(User, volunteer_id)
        return services.cancel_claim(held, actor=volunteer).status

    return work


def outcomes(results: list) -> Counter:
    errors = [r for r in results if not isinstance(r, str)]
    assert not errors, f"racers failed: {errors[:3]!r}"
    return Counter(results)


def report(name: str, results: list, seconds: float) -> None:
    print(f"\n{name}: {len(results)} racers in {seconds:.2f}s -> {dict(Counter(map(str, results)))}")


def rows_by_status(project_id: int) -> dict[str, int]:
    return dict(db.session.execute(
        select(Claim.status, func.count()).where(Claim.project_id == project_id).group_by(Claim.status)).all())


def assert_counters_match_rows(project_id: int) -> Project:
    db.session.expire_all()
    project = db.session.get(Project, project_id)
    rows = rows_by_status(project_id)
    assert project.confirmed_count == rows.get(ClaimStatus.CONFIRMED, 0)
    assert project.waitlist_count == rows.get(ClaimStatus.WAITLISTED, 0)
    assert project.confirmed_count <= project.capacity
    assert project.waitlist_count <= project.waitlist_capacity
    return project


def waiting(project_id: int) -> list[Claim]:
    return list(db.session.scalars(select(Claim).where(Claim.project_id == project_id,
                                                       Claim.status == ClaimStatus.WAITLISTED)
                                   .order_by(Claim.waitlist_seq)))


@pytest.fixture
def race_app(app, database_url):
    """The test's database seen through a second app whose connection pool fits every racer."""
    other = create_app(TestConfig, {"SQLALCHEMY_DATABASE_URI": database_url, "SQLALCHEMY_ENGINE_OPTIONS": RACE_ENGINE})
    yield other
    with other.app_context():
        db.engine.dispose()


@pytest.fixture
def coordinator(make_user, make_org):
    return make_user("coordinator", organization=make_org())


@pytest.fixture
def volunteer_ids(make_user):
    def factory(n: int) -> list[int]:
        return [make_user(name=f"抢名额{i}").id for i in range(n)]

    return factory


@pytest.fixture
def open_project(coordinator):
    """The id of a published project open for claims now (ids only: the racers load their own)."""

    def factory(capacity: int, waitlist_capacity: int) -> int:
        now = utcnow()
        project = services.create_project(
            {"title": "秒抢", "category": "环保", "location": "镇广场", "starts_at": now + timedelta(days=1),
             "ends_at": now + timedelta(days=1, hours=2), "capacity": capacity,
             "waitlist_capacity": waitlist_capacity}, actor=coordinator)
        services.publish(project, actor=coordinator, publish_at=now - timedelta(minutes=1))
        db.session.commit()
        return project.id

    return factory


def claim_now(project_id: int, volunteer_id: int) -> Claim:
    """A claim made before the race, in the test's own session."""
    return services.claim(db.session.get(Project, project_id), volunteer=db.session.get(User, volunteer_id))


def quiet_test_session() -> None:
    """End the test's own transaction: on SQLite it would hold the write lock the racers need."""
    db.session.commit()
    db.session.close()


def test_sixty_claimers_fill_ten_places_and_ten_waitlist_places_exactly(app, race_app, open_project,
                                                                        volunteer_ids):
    project_id = open_project(capacity=10, waitlist_capacity=10)
    ids = volunteer_ids(60)
    quiet_test_session()

    results, seconds = race(race_app, [claim_job(project_id, v) for v in ids])

    report("60 claimers, 10 places + 10 waitlist", results, seconds)
    assert outcomes(results) == {"confirmed": 10, "waitlisted": 10, "project_full": 40}
    project = assert_counters_match_rows(project_id)
    assert (project.confirmed_count, project.waitlist_count) == (10, 10)
    queue = waiting(project_id)
    assert [c.waitlist_seq for c in queue] == list(range(1, 11))
    assert [services.waitlist_position(c) for c in queue] == list(range(1, 11))
    winners = {c.volunteer_id for c in db.session.scalars(select(Claim).where(Claim.project_id == project_id))}
    assert len(winners) == 20
    assert seconds < 20


def test_forty_double_tapping_claimers_through_the_api_fill_ten_places_and_ten_waitlist_places_exactly(
        app, race_app, open_project, volunteer_ids):
    """The API's own path, over HTTP: the refusal from the bearer token before sign-in, and the whole path, raced
    by 80 requests — each of 40 volunteers tapping twice — on 10 + 10 places."""
    project_id = open_project(capacity=10, waitlist_capacity=10)
    tokens = [issue_token(db.session.get(User, v))[0] for v in volunteer_ids(40)]
    quiet_test_session()

    def api_claim(raw: str) -> Callable[[], str]:
        def work() -> str:
            response = race_app.test_client().post(f"/api/v1/projects/{project_id}/claims",
                                                   headers={"Authorization": f"Bearer {raw}"})
            body = response.get_json()
            return body["status"] if response.status_code == 201 else body["error"]["code"]

        return work

    results, seconds = race(race_app, [api_claim(raw) for raw in tokens for _tap in range(2)], unit=False)

    report("40 volunteers x 2 taps through the API, 10 places + 10 waitlist", results, seconds)
    counted = outcomes(results)
    assert (counted["confirmed"], counted["waitlisted"]) == (10, 10)
    assert set(counted) <= {"confirmed", "waitlisted", "project_full", "already_claimed"}
    project = assert_counters_match_rows(project_id)
    assert (project.confirmed_count, project.waitlist_count) == (10, 10)
    assert [c.waitlist_seq for c in waiting(project_id)] == list(range(1, 11))
    holders = [c.volunteer_id for c in db.session.scalars(select(Claim).where(Claim.project_id == project_id))]
    assert len(holders) == len(set(holders)) == 20  # one claim per volunteer, whatever they tapped
    assert seconds < 20


def test_last_place_goes_to_exactly_one_of_fifty_claimers(app, race_app, open_project, volunteer_ids):
    project_id = open_project(capacity=50, waitlist_capacity=0)
    for v in volunteer_ids(49):
        claim_now(project_id, v)
    racers = volunteer_ids(50)
    quiet_test_session()

    results, seconds = race(race_app, [claim_job(project_id, v) for v in racers])

    report("50 claimers, the last of 50 places", results, seconds)
    assert outcomes(results) == {"confirmed": 1, "project_full": 49}
    project = assert_counters_match_rows(project_id)
    assert project.confirmed_count == 50 and project.places_left == 0
    assert seconds < 20


def test_a_double_tapping_volunteer_gets_exactly_one_claim(app, race_app, open_project, volunteer_ids):
    project_id = open_project(capacity=5, waitlist_capacity=5)
    (volunteer,) = volunteer_ids(1)
    quiet_test_session()

    results, seconds = race(race_app, [claim_job(project_id, volunteer) for _ in range(10)])

    report("one volunteer tapping 10 times", results, seconds)
    assert outcomes(results) == {"confirmed": 1, "already_claimed": 9}
    project = assert_counters_match_rows(project_id)
    assert (project.confirmed_count, project.waitlist_count) == (1, 0)
    assert rows_by_status(project_id) == {"confirmed": 1}


def test_cancellations_racing_promotions_and_new_claims_keep_places_waitlist_and_order(
        app, race_app, open_project, volunteer_ids):
    project_id = open_project(capacity=10, waitlist_capacity=15)  # 5 waitlist places left for the newcomers
    holders, queued, newcomers = volunteer_ids(10), volunteer_ids(10), volunteer_ids(20)
    confirmed = [claim_now(project_id, v) for v in holders]
    waitlisted = [claim_now(project_id, v) for v in queued]
    assert {c.status for c in confirmed} == {"confirmed"} and {c.status for c in waitlisted} == {"waitlisted"}
    # Half the confirmed volunteers and two on the waitlist (3rd and 7th) cancel while newcomers claim.
    leaving = [(c.id, c.volunteer_id) for c in confirmed[:5] + [waitlisted[2], waitlisted[6]]]
    leaving_ids = {claim_id for claim_id, _ in leaving}
    quiet_test_session()

    jobs = [cancel_job(*pair) for pair in leaving] + [claim_job(project_id, v) for v in newcomers]
    results, seconds = race(race_app, jobs)

    report("7 cancellers + 20 new claimers, places full, 5 waitlist places left", results, seconds)
    assert outcomes(results[:7]) == {"cancelled": 7}
    newcomers = outcomes(results[7:])
    assert set(newcomers) <= {"waitlisted", "project_full"}
    assert 5 <= newcomers["waitlisted"] <= 5 + 7  # the 5 places left, and at most one more per canceller
    project = assert_counters_match_rows(project_id)
    assert project.confirmed_count == 10  # the waitlist never ran dry, so every freed place was refilled
    claims = list(db.session.scalars(select(Claim).where(Claim.project_id == project_id)))
    by_status = Counter(c.status for c in claims)
    assert by_status["cancelled"] == 7 and all(c.cancelled_at for c in claims if c.status == "cancelled")
    assert {c.id for c in claims if c.status == "cancelled"} == leaving_ids
    # First come, first served: everyone promoted joined the waitlist before everyone still waiting.
    promoted = [c.waitlist_seq for c in claims if c.waitlist_seq is not None and c.confirmed_at is not None]
    still_waiting = [c.waitlist_seq for c in claims if c.status == "waitlisted"]
    assert len([c for c in claims if c.status == "confirmed" and c.waitlist_seq is not None]) == 5
    assert max(promoted) < min(still_waiting)
    assert [services.waitlist_position(c) for c in waiting(project_id)] == list(range(1, len(still_waiting) + 1))
    left_while_waiting = [c for c in claims if c.id in leaving_ids and c.waitlist_seq and not c.confirmed_at]
    assert len(still_waiting) == 10 - len(promoted) - len(left_while_waiting) + newcomers["waitlisted"]
    assert seconds < 20


def _claim_in_process(url: str, tasks, barrier, results) -> None:
    """One worker process: its own app and connection pool, its claims raced by threads once every process is
    ready. Reports the outcomes and when its race began and ended (wall clock, comparable across processes)."""
    app = create_app(TestConfig, {"SQLALCHEMY_DATABASE_URI": url,
                                  "SQLALCHEMY_ENGINE_OPTIONS": {**RACE_ENGINE, "pool_size": 10}})
    project_id, volunteer_ids = tasks.get(timeout=120)
    barrier.wait()
    began = time.time()
    outcome, _ = race(app, [claim_job(project_id, v) for v in volunteer_ids])
    results.put(([r if isinstance(r, str) else repr(r) for r in outcome], began, time.time()))


@pytest.mark.skipif(not PG_URL, reason="worker processes sharing one database is a PostgreSQL deployment; "
                                       "set TEST_DATABASE_URL to run it")
def test_four_processes_of_twenty_five_claimers_fill_twenty_places_and_twenty_waitlist_places(
        app, open_project, volunteer_ids):
    ctx = multiprocessing.get_context("spawn")
    tasks, barrier, results = ctx.Queue(), ctx.Barrier(4), ctx.Queue()
    workers = [ctx.Process(target=_claim_in_process, args=(PG_URL, tasks, barrier, results), daemon=True)
               for _ in range(4)]
    for w in workers:  # they start up while the project and the volunteers are made
        w.start()
    project_id = open_project(capacity=20, waitlist_capacity=20)
    ids = volunteer_ids(100)
    quiet_test_session()

    for i in range(4):
        tasks.put((project_id, ids[i::4]))
    reports = [results.get(timeout=120) for _ in workers]
    for w in workers:
        w.join(timeout=30)

    collected = [r for outcome, _, _ in reports for r in outcome]
    seconds = max(end for _, _, end in reports) - min(began for _, began, _ in reports)
    report("4 processes x 25 claimers, 20 places + 20 waitlist", collected, seconds)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    assert outcomes(collected) == {"confirmed": 20, "waitlisted": 20, "project_full": 60}
    project = assert_counters_match_rows(project_id)
    assert (project.confirmed_count, project.waitlist_count) == (20, 20)
    assert [c.waitlist_seq for c in waiting(project_id)] == list(range(1, 21))
    assert seconds < 20


def test_a_promotion_racing_the_same_volunteers_new_claim_never_takes_them_past_the_cap(
        app, race_app, open_project, volunteer_ids, set_policy):
    """Each round: a volunteer one below the cap (3) is first on a waitlist; at the same instant the place ahead of
    them is freed (promotion) and they claim another project. Both may not win: the cap holds either way, and the
    place passes to the next in line when they took the other project."""
    set_policy(max_active_claims=3)
    setups = []
    for _ in range(6):  # every round set up first: the racers need the test's session closed
        queue = open_project(capacity=1, waitlist_capacity=5)
        holder, racer, next_in_line = volunteer_ids(3)
        held = claim_now(queue, holder)
        claim_now(queue, racer)
        claim_now(queue, next_in_line)
        for _ in range(2):
            claim_now(open_project(capacity=5, waitlist_capacity=0), racer)
        setups.append((queue, held.id, holder, racer, next_in_line, open_project(capacity=5, waitlist_capacity=0)))
    quiet_test_session()

    for n, (queue, held_id, holder, racer, next_in_line, other) in enumerate(setups):
        results, seconds = race(race_app, [cancel_job(held_id, holder), claim_job(other, racer)])

        report(f"round {n}: a promotion and the promoted volunteer's own claim", results, seconds)
        assert results[0] == "cancelled", results
        assert results[1] in ("confirmed", "claim_limit"), results
        active = services.active_claims(db.session.get(User, racer), utcnow())
        assert active == 3, f"round {n}: {active} active claims with a cap of 3 ({results})"
        mine = db.session.scalars(select(Claim).where(Claim.project_id == queue,
                                                      Claim.volunteer_id == racer)).one()
        after = db.session.scalars(select(Claim).where(Claim.project_id == queue,
                                                       Claim.volunteer_id == next_in_line)).one()
        # Exactly one of the two got the freed place: the racer if their other claim lost, else the next in line.
        assert {mine.status, after.status} == {"confirmed", "waitlisted"}
        assert (mine.status == "confirmed") == (results[1] == "claim_limit")
        assert_counters_match_rows(queue)
        quiet_test_session()
