"""The service-record rules of SPEC 2.2 through the services: every refusal changes nothing; check-in and
check-out with rotating codes, automatic approval and lapsing; who may review."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from credits.errors import DomainError
from credits.extensions import db
from credits.hours import services as hours
from credits.hours.models import RecordSource, RecordStatus, ServiceRecord
from credits.ledger.verify import verify_ledger
from credits.projects import services as projects
from credits.projects.models import Claim, ClaimStatus
from credits.timeutil import utcnow
from tests.hours.helpers import (
    Clock,
    approve,
    at,
    confirmed_claim,
    file,
    record_count,
    revoke,
    slot,
    started_project,
)


def refused(fn, *args, **kwargs) -> DomainError:
    """The DomainError a service raises, after which the unit of work is rolled back as a view would."""
    with pytest.raises(DomainError) as info:
        fn(*args, **kwargs)
    db.session.rollback()
    return info.value


@pytest.fixture
def project(coordinator):
    return started_project(coordinator)


@pytest.fixture
def claim(project, volunteer):
    return confirmed_claim(project, volunteer)


@pytest.fixture
def clock(monkeypatch):
    """The hours services' clock, fixed at 09:00 yesterday (Asia/Shanghai) so that local days are predictable."""
    clock = Clock(at(1, 9))
    monkeypatch.setattr(hours, "utcnow", clock)
    return clock


def file_refused(claim, volunteer, data) -> DomainError:
    before = record_count()
    error = refused(hours.file_manual, claim, data, volunteer=volunteer)
    assert record_count() == before, "a refused record was written"
    return error


# --- the period of a manual record -------------------------------------------------------------------


def test_a_manual_record_waits_for_review(claim, volunteer):
    record = file(claim, volunteer, {**slot(3, 90), "note": "量血压"})
    assert (record.status, record.source, record.minutes, record.note) == ("pending", "manual", 90, "量血压")
    assert (record.project_id, record.volunteer_id) == (claim.project_id, volunteer.id)


def test_end_not_after_start_is_refused(claim, volunteer):
    start = at(3, 9)
    for end in (start, start - timedelta(minutes=30)):
        error = file_refused(claim, volunteer, {"started_at": start, "ended_at": end})
        assert (error.code, error.status) == ("validation_error", 422)
        assert "ended_at" in error.fields


def test_time_in_the_future_is_refused(claim, volunteer):
    now = utcnow()
    error = file_refused(claim, volunteer, {"started_at": now - timedelta(minutes=30),
                                            "ended_at": now + timedelta(minutes=30)})
    assert error.code == "validation_error" and "ended_at" in error.fields


def test_time_outside_the_project_period_is_refused(coordinator, volunteer):
    project = started_project(coordinator, days_ago=2)
    claim = confirmed_claim(project, volunteer)
    error = file_refused(claim, volunteer, {"started_at": project.starts_at - timedelta(minutes=30),
                                            "ended_at": project.starts_at + timedelta(minutes=30)})
    assert error.code == "validation_error" and "started_at" in error.fields
    assert file(claim, volunteer, {"started_at": project.starts_at,
                                   "ended_at": project.starts_at + timedelta(minutes=30)}).minutes == 30


def test_a_record_over_twelve_hours_is_refused(claim, volunteer):
    error = file_refused(claim, volunteer, slot(3, 12 * 60 + 1, hour=8))
    assert error.code == "validation_error" and "ended_at" in error.fields
    assert file(claim, volunteer, slot(3, 12 * 60, hour=8)).minutes == 720


def test_more_than_twelve_hours_on_one_local_day_is_refused(claim, volunteer):
    file(claim, volunteer, slot(6, 5 * 60, hour=7))
    file(claim, volunteer, slot(6, 7 * 60, hour=13))  # exactly 12 h that day: allowed
    error = file_refused(claim, volunteer, slot(6, 1, hour=21))
    assert (error.code, error.status) == ("daily_limit", 409)
    assert file(claim, volunteer, slot(5, 60, hour=21)).minutes == 60  # another day is another 12 h


def test_a_record_across_local_midnight_counts_on_each_day(claim, volunteer):
    # 20:00 on day D to 04:00 on D+1: four hours on each day, not eight on either.
    file(claim, volunteer, {"started_at": at(5, 20), "ended_at": at(4, 4)})
    file(claim, volunteer, slot(5, 8 * 60, hour=8))  # D: 4 + 8 = 12 h
    file(claim, volunteer, slot(4, 8 * 60, hour=6))  # D+1: 4 + 8 = 12 h
    assert file_refused(claim, volunteer, slot(5, 1, hour=17)).code == "daily_limit"
    assert file_refused(claim, volunteer, slot(4, 1, hour=15)).code == "daily_limit"


def test_a_new_record_across_midnight_is_checked_on_both_days(claim, volunteer):
    file(claim, volunteer, slot(3, 10 * 60, hour=8))  # D+1: 10 h
    # 22:00 on D to 03:00 on D+1: two hours on D (fine) but three more on D+1 (13 h).
    error = file_refused(claim, volunteer, {"started_at": at(4, 22), "ended_at": at(3, 3)})
    assert error.code == "daily_limit"
    assert file(claim, volunteer, {"started_at": at(4, 22), "ended_at": at(3, 2)}).minutes == 240


def test_the_daily_limit_counts_every_project(coordinator, volunteer, claim):
    other = confirmed_claim(started_project(coordinator, title="敬老院陪伴"), volunteer)
    file(claim, volunteer, slot(3, 8 * 60, hour=8))
    assert file_refused(other, volunteer, slot(3, 5 * 60, hour=17)).code == "daily_limit"
    assert file(other, volunteer, slot(3, 4 * 60, hour=17)).minutes == 240


@pytest.mark.parametrize("status", ["pending", "approved"])
def test_overlap_with_a_pending_or_approved_record_is_refused(claim, volunteer, coordinator, status):
    first = file(claim, volunteer, slot(3, 120, hour=9))
    if status == "approved":
        approve(first, coordinator)
    for data in (slot(3, 60, hour=10), slot(3, 240, hour=8), {"started_at": at(3, 10, 59), "ended_at": at(3, 12)}):
        error = file_refused(claim, volunteer, data)
        assert (error.code, error.status) == ("overlap", 409)
    # Touching end to start is not an overlap.
    assert file(claim, volunteer, slot(3, 60, hour=11)).minutes == 60


def test_overlap_is_checked_across_projects(coordinator, volunteer, claim):
    other = confirmed_claim(started_project(coordinator, title="敬老院陪伴"), volunteer)
    file(claim, volunteer, slot(3, 120, hour=9))
    assert file_refused(other, volunteer, slot(3, 60, hour=10)).code == "overlap"


@pytest.mark.parametrize("undo", ["reject", "revoke"])
def test_a_rejected_or_revoked_record_holds_no_time(claim, volunteer, coordinator, undo):
    first = file(claim, volunteer, slot(3, 120, hour=9))
    if undo == "reject":
        hours.reject(first, "时间填错了", reviewer=coordinator)
    else:
        approve(first, coordinator)
        hours.revoke(first, "时间填错了", reviewer=coordinator)
    db.session.commit()
    assert file(claim, volunteer, slot(3, 120, hour=9)).status == "pending"


def test_another_volunteers_records_do_not_overlap_mine(project, claim, volunteer, make_user):
    neighbour = make_user("volunteer", name="王小红")
    file(confirmed_claim(project, neighbour), neighbour, slot(3, 120, hour=9))
    assert file(claim, volunteer, slot(3, 120, hour=9)).minutes == 120


# --- the claim a record belongs to ---------------------------------------------------------------------


def test_a_waitlisted_claim_cannot_record_hours(coordinator, volunteer, make_user):
    project = started_project(coordinator, capacity=1)
    confirmed_claim(project, make_user("volunteer"))
    waiting = projects.claim(project, volunteer=volunteer)
    db.session.commit()
    assert waiting.status == "waitlisted"
    error = file_refused(waiting, volunteer, slot(3, 60))
    assert (error.code, error.status) == ("invalid_state", 409)


def test_a_cancelled_claim_cannot_record_hours(claim, volunteer):
    db.session.execute(update(Claim).where(Claim.id == claim.id).values(status=ClaimStatus.CANCELLED))
    db.session.commit()
    db.session.refresh(claim)
    assert file_refused(claim, volunteer, slot(3, 60)).code == "invalid_state"


def test_someone_elses_claim_cannot_record_hours(claim, make_user):
    intruder = make_user("volunteer", name="赵某")
    error = file_refused(claim, intruder, slot(3, 60))
    assert (error.code, error.status) == ("forbidden", 403)


# --- check-in and check-out ------------------------------------------------------------------------------


def test_check_in_and_out_with_the_current_code_approves_up_to_eight_hours(claim, volunteer, coordinator,
                                                                               project, clock):
    code, expires_at = hours.checkin_code(project, actor=coordinator)
    assert code == clock.code(project) and len(code) == 6 and code.isdigit()
    assert clock.now < expires_at <= clock.now + timedelta(seconds=hours.CODE_WINDOW)
    record = hours.check_in(claim, code, volunteer=volunteer)
    db.session.commit()
    assert (record.status, record.source, record.started_at, record.ended_at) == ("open", "checkin", clock.now,
                                                                                   None)
    clock.advance(hours=2, minutes=30)
    record, coins = hours.check_out(claim, clock.code(project), volunteer=volunteer)
    db.session.commit()
    assert (record.status, record.minutes, record.reviewed_by_id) == ("approved", 150, None)
    assert coins == 2
    assert verify_ledger() == []


def test_the_previous_code_is_still_accepted(claim, volunteer, project, clock):
    record = hours.check_in(claim, clock.code(project, windows_back=1), volunteer=volunteer)
    assert record.status == "open"


def test_a_wrong_or_stale_code_is_refused(claim, volunteer, project, clock):
    current, previous = clock.code(project), clock.code(project, windows_back=1)
    wrong = next(c for c in (f"{(int(current) + n) % 1_000_000:06d}" for n in range(1, 5)) if c != previous)
    for code in (wrong, clock.code(project, windows_back=2), "", "abc"):
        error = refused(hours.check_in, claim, code, volunteer=volunteer)
        assert isinstance(error, hours.WrongCode) and (error.code, error.status) == ("validation_error", 422)
        assert error.fields == {"code": [str(hours.WrongCode.message)]}
    assert record_count() == 0
    hours.check_in(claim, current, volunteer=volunteer)
    db.session.commit()
    clock.advance(hours=1)
    assert isinstance(refused(hours.check_out, claim, clock.code(project, windows_back=2), volunteer=volunteer),
                      hours.WrongCode)
    assert record_count(status="open") == 1


def test_another_projects_code_is_refused(claim, volunteer, coordinator, project, clock):
    other = started_project(coordinator, title="敬老院陪伴")
    assert clock.code(other) != clock.code(project)
    assert isinstance(refused(hours.check_in, claim, clock.code(other), volunteer=volunteer), hours.WrongCode)


def test_checking_out_without_checking_in_is_refused(claim, volunteer, project, clock):
    error = refused(hours.check_out, claim, clock.code(project), volunteer=volunteer)
    assert (error.code, error.status) == ("invalid_state", 409)
    assert record_count() == 0


def test_checking_in_twice_is_refused(claim, volunteer, project, clock):
    hours.check_in(claim, clock.code(project), volunteer=volunteer)
    db.session.commit()
    clock.advance(minutes=5)
    assert refused(hours.check_in, claim, clock.code(project), volunteer=volunteer).code == "overlap"
    assert record_count() == 1


def test_an_overlap_with_an_open_check_in_names_it_and_says_check_out_first(claim, volunteer, project, clock,
                                                                           coordinator):
    """Issue 21, item 7: "与另一条记录重叠" left the volunteer guessing which one and what to do."""
    hours.check_in(claim, clock.code(project), volunteer=volunteer)
    db.session.commit()
    other = started_project(coordinator, title="变废为宝")
    other_claim = confirmed_claim(other, volunteer)
    error = refused(hours.check_in, other_claim, clock.code(other), volunteer=volunteer)
    assert error.code == "overlap"
    assert "“健康加油站”" in str(error.message) and "请先签退" in str(error.message)
    error = file_refused(other_claim, volunteer, {"started_at": clock.now - timedelta(minutes=30),
                                                  "ended_at": clock.now + timedelta(minutes=1), "note": ""})
    assert error.code == "overlap" and "请先签退" in str(error.message)


def test_check_in_records_wait_for_review_when_auto_approval_is_off(claim, volunteer, project, clock, set_policy):
    set_policy(auto_approve_checkin=False)
    hours.check_in(claim, clock.code(project), volunteer=volunteer)
    clock.advance(hours=2)
    record, coins = hours.check_out(claim, clock.code(project), volunteer=volunteer)
    db.session.commit()
    assert (record.status, record.minutes, coins) == ("pending", 120, 0)


def test_more_than_eight_check_in_hours_that_day_wait_for_review(claim, volunteer, project, clock):
    clock.now = at(1, 8)
    hours.check_in(claim, clock.code(project), volunteer=volunteer)
    clock.advance(hours=9)
    record, coins = hours.check_out(claim, clock.code(project), volunteer=volunteer)
    db.session.commit()
    assert (record.status, record.minutes, coins) == ("pending", 540, 0)


def test_moving_the_check_in_back_past_eight_hours_leaves_it_for_review(claim, volunteer, project, clock):
    clock.now = at(1, 18)
    record = hours.check_in(claim, clock.code(project), volunteer=volunteer)
    db.session.commit()
    db.session.execute(update(ServiceRecord).where(ServiceRecord.id == record.id)
                       .values(started_at=at(1, 9)))  # as if checked in at 09:00
    db.session.commit()
    clock.advance(minutes=30)
    record, coins = hours.check_out(claim, clock.code(project), volunteer=volunteer)
    db.session.commit()
    assert (record.status, record.minutes, coins) == ("pending", 570, 0)


def test_the_eight_hours_add_up_over_the_days_check_ins(claim, volunteer, project, clock):
    clock.now = at(1, 7)
    hours.check_in(claim, clock.code(project), volunteer=volunteer)
    clock.advance(hours=5)
    first, coins = hours.check_out(claim, clock.code(project), volunteer=volunteer)
    db.session.commit()
    assert (first.status, coins) == ("approved", 5)
    clock.advance(hours=1)
    hours.check_in(claim, clock.code(project), volunteer=volunteer)
    clock.advance(hours=3)
    second, coins = hours.check_out(claim, clock.code(project), volunteer=volunteer)
    db.session.commit()
    assert (second.status, second.minutes, coins) == ("approved", 180, 3)  # 5 + 3 = 8 h: still automatic
    clock.advance(minutes=30)
    hours.check_in(claim, clock.code(project), volunteer=volunteer)
    clock.advance(minutes=30)
    third, coins = hours.check_out(claim, clock.code(project), volunteer=volunteer)
    db.session.commit()
    assert (third.status, third.minutes, coins) == ("pending", 30, 0)  # 8.5 h that day
    assert verify_ledger() == []


def test_check_out_keeps_to_the_daily_limit(claim, volunteer, project, clock):
    file(claim, volunteer, slot(1, 5 * 60, hour=1))  # 01:00–06:00 yesterday, manual
    clock.now = at(1, 7)
    hours.check_in(claim, clock.code(project), volunteer=volunteer)
    db.session.commit()
    clock.advance(hours=8)  # 5 + 8 = 13 h
    assert refused(hours.check_out, claim, clock.code(project), volunteer=volunteer).code == "daily_limit"
    assert record_count(status="open") == 1


def test_an_open_check_in_lapses_after_twelve_hours(claim, volunteer, project, clock):
    checked_in = hours.check_in(claim, clock.code(project), volunteer=volunteer)
    db.session.commit()
    clock.advance(hours=11, minutes=59)
    assert hours.lapse_open_checkins() == 0
    clock.advance(minutes=2)
    assert hours.lapse_open_checkins() == 1
    db.session.commit()
    db.session.refresh(checked_in)
    assert (checked_in.status, checked_in.minutes, checked_in.ended_at) == ("lapsed", None, None)
    error = refused(hours.check_out, claim, clock.code(project), volunteer=volunteer)
    assert error.code == "invalid_state"
    # No hours, and the time is free for a manual record (补录).
    record = file(claim, volunteer, {"started_at": checked_in.started_at,
                                     "ended_at": checked_in.started_at + timedelta(hours=3)})
    assert record.status == "pending"


def test_check_out_after_twelve_hours_finds_nothing_to_close(claim, volunteer, project, clock):
    hours.check_in(claim, clock.code(project), volunteer=volunteer)
    db.session.commit()
    clock.advance(hours=12, minutes=1)
    assert refused(hours.check_out, claim, clock.code(project), volunteer=volunteer).code == "invalid_state"
    assert db.session.scalar(select(ServiceRecord.minutes)) is None


# --- review ----------------------------------------------------------------------------------------------


def test_nobody_reviews_their_own_records(make_user, org, coordinator):
    both = make_user("coordinator", "volunteer", name="钱两用", organization=org)
    project = started_project(coordinator)
    claim = confirmed_claim(project, both)
    record = file(claim, both, slot(3, 60))
    assert refused(hours.approve, record, reviewer=both).code == "forbidden"
    assert refused(hours.reject, record, "自己驳回", reviewer=both).code == "forbidden"
    assert approve(record, coordinator) == 1  # a colleague may
    assert refused(hours.revoke, record, "自己撤销", reviewer=both).code == "forbidden"
    db.session.refresh(record)
    assert record.status == "approved"


def test_only_the_organisers_coordinators_review(make_user, make_org, claim, volunteer):
    outsider = make_user("coordinator", organization=make_org("别的社区"))
    record = file(claim, volunteer, slot(3, 60))
    for action in (lambda: hours.approve(record, reviewer=outsider),
                   lambda: hours.reject(record, "不行", reviewer=outsider)):
        assert refused(action).code == "forbidden"
    with pytest.raises(DomainError) as info:
        hours.get_record(record.id, viewer=outsider)
    assert info.value.code == "not_found"
    db.session.refresh(record)
    assert record.status == "pending" and record.reviewed_by_id is None


def test_reject_and_revoke_keep_the_reason(claim, volunteer, coordinator):
    rejected = file(claim, volunteer, slot(3, 60))
    hours.reject(rejected, "当天未到场", reviewer=coordinator)
    db.session.commit()
    approved = file(claim, volunteer, slot(4, 60))
    approve(approved, coordinator)
    revoke(approved, coordinator, "重复记录")
    for record, status, reason in ((rejected, "rejected", "当天未到场"), (approved, "revoked", "重复记录")):
        db.session.refresh(record)
        assert (record.status, record.reason, record.reviewed_by_id) == (status, reason, coordinator.id)
        assert record.reviewed_at is not None


def test_review_state_changes_are_refused_in_the_wrong_state(claim, volunteer, coordinator):
    record = file(claim, volunteer, slot(3, 60))
    assert refused(hours.revoke, record, "还没通过", reviewer=coordinator).code == "invalid_state"
    approve(record, coordinator)
    for action in (lambda: hours.approve(record, reviewer=coordinator),
                   lambda: hours.reject(record, "已经通过", reviewer=coordinator)):
        assert refused(action).code == "invalid_state"
    revoke(record, coordinator)
    assert refused(hours.revoke, record, "再撤一次", reviewer=coordinator).code == "invalid_state"


def test_record_sources_and_statuses_are_what_the_spec_names():
    assert {s.value for s in RecordSource} == {"checkin", "manual"}
    assert {"pending", "approved", "rejected", "revoked"} <= {s.value for s in RecordStatus}


def test_demo_data_has_records_in_every_review_state_and_a_volunteer_with_coins(app):
    from sqlalchemy import select

    from credits.demo import seed_demo
    from credits.hours.models import ServiceRecord
    from credits.ledger.models import Account
    from credits.ledger.verify import verify_ledger

    seed_demo()
    db.session.commit()
    states = set(db.session.scalars(select(ServiceRecord.status)))
    assert {"pending", "approved", "rejected", "revoked"} <= states
    assert db.session.scalar(select(Account.balance).where(Account.kind == "volunteer", Account.balance > 0))
    assert verify_ledger() == []
