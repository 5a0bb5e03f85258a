"""Service hours raced by real threads against the real database (SQLite or PostgreSQL): an approval from eight
threads or two coordinators issues once, parallel approvals settle the cumulative rule exactly, check-out
racing the lapse job ends one way only, and a volunteer's simultaneous records keep to the overlap and daily
rules. Each racer is one unit of work in its own application context, committed by in_transaction."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from credits.auth.models import User
from credits.database import in_transaction
from credits.errors import DomainError
from credits.extensions import db
from credits.hours import services as hours
from credits.hours.models import CreditState, ServiceRecord
from credits.ledger.models import Account, Transaction
from credits.ledger.verify import verify_ledger
from credits.projects.models import Claim
from tests.hours.helpers import Clock, at, confirmed_claim, file, slot, started_project
from tests.races import race

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("retries")]




def no_crashes(results: list) -> None:
    crashed = [r for r in results if isinstance(r, BaseException)]
    assert not crashed, crashed


@pytest.fixture
def project(coordinator):
    return started_project(coordinator, capacity=50, block_minutes=60, coins_per_block=1)


def approving(record_id: int, reviewer_id: int) -> Callable[[], int]:
    def job() -> int:
        record = db.session.get(ServiceRecord, record_id)
        return hours.approve(record, reviewer=db.session.get(User, reviewer_id))

    return job


def ledger_for(record_id: int) -> Counter:
    kinds = db.session.scalars(select(Transaction.kind).where(Transaction.ref_type == "service_record",
                                                               Transaction.ref_id == record_id)).all()
    return Counter(kinds)


def balance(user_id: int) -> int:
    return db.session.scalar(select(Account.balance).where(Account.user_id == user_id)) or 0


def test_one_record_approved_from_eight_threads_issues_once(app, project, volunteer, coordinator):
    claim = confirmed_claim(project, volunteer)
    ids = [file(claim, volunteer, slot(days, 150)).id for days in (4, 3, 2)]
    coordinator_id, volunteer_id = coordinator.id, volunteer.id
    for record_id in ids:
        results, _seconds = race(app, [approving(record_id, coordinator_id)] * 8)
        no_crashes(results)
        assert results.count("invalid_state") == 7, results
        assert [r for r in results if r != "invalid_state"] in ([2], [3])  # 150 min each: 2, then 3, then 2 coins
        assert ledger_for(record_id) == Counter({"issue": 1})
    assert db.session.scalar(select(func.count()).select_from(ServiceRecord)
                             .where(ServiceRecord.status == "approved")) == 3
    state = db.session.get(CreditState, (volunteer_id, project.id))
    assert (state.approved_minutes, state.issued_net, balance(volunteer_id)) == (450, 7, 7)
    assert db.session.get(User, volunteer_id).approved_minutes == 450
    assert verify_ledger() == []


def test_two_coordinators_approving_at_the_same_instant_issue_once(app, project, volunteer, coordinator,
                                                                   make_user):
    colleague = make_user("coordinator", name="周协调", organization=coordinator.organization)
    claim = confirmed_claim(project, volunteer)
    ids = [file(claim, volunteer, slot(days, 60)).id for days in range(2, 8)]
    for record_id in ids:
        results, _ = race(app, [approving(record_id, coordinator.id), approving(record_id, colleague.id)])
        no_crashes(results)
        assert sorted(results, key=str) == [1, "invalid_state"], results
        assert ledger_for(record_id) == Counter({"issue": 1})
    reviewers = Counter(db.session.scalars(select(ServiceRecord.reviewed_by_id)).all())
    assert sum(reviewers.values()) == 6 and set(reviewers) <= {coordinator.id, colleague.id}
    assert balance(volunteer.id) == 6
    assert verify_ledger() == []


def test_parallel_approvals_of_different_records_settle_the_cumulative_rule(app, project, volunteer,
                                                                            coordinator):
    claim = confirmed_claim(project, volunteer)
    ids = [file(claim, volunteer, slot(days, 40)).id for days in range(2, 10)]  # 8 × 40 min = 320 min
    results, _ = race(app, [approving(record_id, coordinator.id) for record_id in ids])
    no_crashes(results)
    assert sum(results) == 5 and all(r in (0, 1) for r in results)  # each threshold reached exactly once
    state = db.session.get(CreditState, (volunteer.id, project.id))
    assert (state.approved_minutes, state.issued_net, balance(volunteer.id)) == (320, 5, 5)
    assert verify_ledger() == []


def test_approvals_and_revocations_race_on_one_volunteer(app, project, volunteer, coordinator):
    claim = confirmed_claim(project, volunteer)
    approved = [file(claim, volunteer, slot(days, 90)).id for days in range(2, 6)]
    for record_id in approved:
        hours.approve(db.session.get(ServiceRecord, record_id), reviewer=coordinator)
    db.session.commit()  # 360 min: 6 coins
    pending = [file(claim, volunteer, slot(days, 90)).id for days in range(6, 10)]
    coordinator_id = coordinator.id  # racers must not touch the test's own session's objects

    def revoking(record_id: int) -> Callable[[], int]:
        def job() -> int:
            return -hours.revoke(db.session.get(ServiceRecord, record_id), "核实有误",
                                 reviewer=db.session.get(User, coordinator_id))

        return job

    results, _ = race(app, [*(revoking(r) for r in approved), *(approving(r, coordinator_id) for r in pending)])
    no_crashes(results)
    assert sum(results) == 0  # 360 minutes revoked, 360 approved: back where it was
    state = db.session.get(CreditState, (volunteer.id, project.id))
    assert (state.approved_minutes, state.issued_net, balance(volunteer.id)) == (360, 6, 6)
    assert verify_ledger() == []


# --- check-out against the lapse job ---------------------------------------------------------------------------


@pytest.fixture
def clock(monkeypatch):
    clock = Clock(at(1, 21))
    monkeypatch.setattr(hours, "utcnow", clock)
    return clock


def open_check_in(project, volunteer, clock: Clock, hours_ago: float) -> int:
    """An open check-in `hours_ago` before the clock, as the volunteer made it then."""
    claim = confirmed_claim(project, volunteer)
    now = clock.now
    clock.now = now - timedelta(hours=hours_ago)
    record = hours.check_in(claim, clock.code(project), volunteer=volunteer)
    db.session.commit()
    clock.now = now
    return record.id


def checking_out(claim_id: int, volunteer_id: int, code: str) -> Callable[[], object]:
    def job():
        record, coins = hours.check_out(db.session.get(Claim, claim_id), code,
                                        volunteer=db.session.get(User, volunteer_id))
        return ("checked out", record.id, coins)

    return job


def lapsing(now, *, after: float = 0.0) -> Callable[[], int]:
    """The lapse job as of `now`, started `after` seconds into the race."""

    def job() -> int:
        time.sleep(after)
        return hours.lapse_open_checkins(now=now)

    return job


def assert_one_way(record_id: int, checkout, lapsed: int) -> str:
    """The record ended checked out (with minutes, maybe coins) or lapsed (nothing) — never both."""
    record = db.session.get(ServiceRecord, record_id)
    db.session.refresh(record)
    if record.status == "lapsed":
        assert checkout == "invalid_state" and lapsed == 1, (checkout, lapsed)
        assert (record.minutes, record.ended_at) == (None, None)
        assert ledger_for(record_id) == Counter()
        return "lapsed"
    assert record.status in ("pending", "approved"), record.status
    assert isinstance(checkout, tuple) and lapsed == 0, (checkout, lapsed)
    assert record.minutes and record.ended_at is not None
    assert ledger_for(record_id) == (Counter({"issue": 1}) if record.status == "approved" else Counter())
    return record.status


def test_check_out_racing_the_lapse_job_ends_one_way(app, project, make_user, clock):
    outcomes = Counter()
    for round_ in range(8):
        volunteer = make_user("volunteer")
        # Alternate a short check-in (approved at check-out, with coins) and a long one (left for review).
        record_id = open_check_in(project, volunteer, clock, hours_ago=2 if round_ % 2 else 11)
        claim_id = db.session.get(ServiceRecord, record_id).claim_id
        # The lapse job runs as if 13 h had passed, so whichever commits first decides; it starts a little later
        # in some rounds so that both orders happen.
        results, _ = race(app, [checking_out(claim_id, volunteer.id, clock.code(project)),
                                lapsing(clock.now + timedelta(hours=13), after=0.01 * (round_ % 4))])
        no_crashes(results)
        outcomes[assert_one_way(record_id, *results)] += 1
    assert sum(outcomes.values()) == 8
    print(f"\n[race] check-out vs lapse outcomes: {dict(outcomes)}")
    assert verify_ledger() == []


def test_the_lapse_job_between_check_outs_read_and_write_cannot_be_undone(app, project, make_user, clock,
                                                                          monkeypatch):
    """The interleaving that matters, forced: check-out has read the open record when the lapse job runs."""
    read, lapsed = threading.Event(), threading.Event()
    validate = hours._validate_period

    def validate_then_wait(*args, **kwargs):
        read.set()
        lapsed.wait(timeout=1.5)  # the lapse job cannot get far while check-out holds a lock it needs
        return validate(*args, **kwargs)

    monkeypatch.setattr(hours, "_validate_period", validate_then_wait)
    volunteer = make_user("volunteer")
    record_id = open_check_in(project, volunteer, clock, hours_ago=2)
    claim_id = db.session.get(ServiceRecord, record_id).claim_id

    def lapse_after_the_read() -> int:
        assert read.wait(timeout=30)
        try:
            return lapsing(clock.now + timedelta(hours=13))()
        finally:
            lapsed.set()

    results, _ = race(app, [checking_out(claim_id, volunteer.id, clock.code(project)), lapse_after_the_read])
    no_crashes(results)
    assert assert_one_way(record_id, *results) in ("approved", "lapsed")
    assert verify_ledger() == []


# --- a volunteer's simultaneous records ---------------------------------------------------------------------------


def filing(claim_id: int, volunteer_id: int, data: dict) -> Callable[[], int]:
    def job() -> int:
        return hours.file_manual(db.session.get(Claim, claim_id), data,
                                 volunteer=db.session.get(User, volunteer_id)).id

    return job


def test_two_overlapping_records_filed_at_once_store_one(app, project, volunteer):
    claim = confirmed_claim(project, volunteer)
    for days in range(2, 7):
        results, _ = race(app, [filing(claim.id, volunteer.id, slot(days, 120, hour=9)),
                                filing(claim.id, volunteer.id, slot(days, 120, hour=10))])
        no_crashes(results)
        assert results.count("overlap") == 1 and sum(isinstance(r, int) for r in results) == 1, results
    assert db.session.scalar(select(func.count()).select_from(ServiceRecord)) == 5


def test_records_filed_at_once_keep_to_the_daily_limit(app, project, volunteer):
    claim = confirmed_claim(project, volunteer)
    jobs = [filing(claim.id, volunteer.id, slot(3, 5 * 60, hour=hour)) for hour in (0, 6, 12, 18)]
    results, _ = race(app, jobs)
    no_crashes(results)
    assert Counter(isinstance(r, int) for r in results) == Counter({True: 2, False: 2}), results
    assert {r for r in results if isinstance(r, str)} == {"daily_limit"}
    total = db.session.scalar(select(func.sum(ServiceRecord.minutes)))
    assert total == 600


def review_queue_of(project, coordinator, make_user, volunteers: int = 3, per_volunteer: int = 4):
    """Pending 50-minute records of a few volunteers, and a second coordinator of the same organisation."""
    ids, people = [], []
    for _ in range(volunteers):
        volunteer = make_user("volunteer")
        claim = confirmed_claim(project, volunteer)
        ids += [file(claim, volunteer, slot(days, 50)).id for days in range(2, 2 + per_volunteer)]
        people.append(volunteer.id)
    colleague = make_user("coordinator", organization=coordinator.organization)
    return ids, people, [coordinator.id, colleague.id]


def assert_queue_settled(project_id: int, ids: list[int], people: list[int], results: list) -> None:
    assert sum(len(r) for r in results) == len(ids)  # each record approved by exactly one worker
    assert db.session.scalar(select(func.count()).select_from(ServiceRecord)
                             .where(ServiceRecord.status == "approved")) == len(ids)
    for volunteer_id in people:
        state = db.session.get(CreditState, (volunteer_id, project_id))
        assert (state.approved_minutes, state.issued_net, balance(volunteer_id)) == (200, 3, 3)
    assert verify_ledger() == []


def test_eight_reviewers_working_one_queue_approve_each_record_once(app, project, coordinator, make_user):
    """Eight threads sweep the same queue, each from a different place, one approval per unit of work."""
    ids, people, reviewers = review_queue_of(project, coordinator, make_user)

    def sweeping(n: int) -> Callable[[], list]:
        def sweep() -> list:
            done = []
            for record_id in ids[n:] + ids[:n]:
                with contextlib.suppress(DomainError):
                    done.append(in_transaction(approving(record_id, reviewers[n % 2])))
            return done

        return sweep

    results, _ = race(app, [sweeping(n) for n in range(8)], unit=False)
    no_crashes(results)
    assert_queue_settled(project.id, ids, people, results)


def test_two_bulk_reviews_of_the_same_queue_at_once_approve_each_record_once(app, project, coordinator,
                                                                             make_user):
    """POST /hours/review's batch, by two coordinators at once in opposite orders: a deadlock, if the database
    finds one, is replayed by the retry policy; nothing is approved twice."""
    from credits.hours.api import review_batch

    ids, people, reviewers = review_queue_of(project, coordinator, make_user)

    def bulk(order: list[int], reviewer_id: int) -> Callable[[], list]:
        def job() -> list:
            results = review_batch(order, "approve", "", reviewer=db.session.get(User, reviewer_id))
            return [r for r in results if r["ok"]]

        return job

    results, _ = race(app, [bulk(ids, reviewers[0]), bulk(ids[::-1], reviewers[1])])
    no_crashes(results)
    assert_queue_settled(project.id, ids, people, results)


def test_lapse_leaves_recent_check_ins_alone(app, project, make_user, clock):
    volunteer = make_user("volunteer")
    record_id = open_check_in(project, volunteer, clock, hours_ago=1)
    results, _ = race(app, [lapsing(clock.now)] * 4)
    assert results == [0, 0, 0, 0]
    db.session.execute(update(ServiceRecord).where(ServiceRecord.id == record_id)
                       .values(started_at=clock.now - timedelta(hours=13)))
    db.session.commit()
    results, _ = race(app, [lapsing(clock.now)] * 4)
    assert sorted(results) == [0, 0, 0, 1]
