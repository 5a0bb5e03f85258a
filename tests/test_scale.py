"""`flask credits seed-scale` at a tiny size: what it writes keeps every rule the services keep."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from credits.auth.models import Role, User, UserRole
from credits.auth.services import authenticate
from credits.extensions import db
from credits.hours.models import HOLDING_TIME, RecordStatus, ServiceRecord
from credits.ledger.models import Account, SystemAccount
from credits.merchants.models import Voucher, VoucherStatus
from credits.projects.models import Claim, ClaimStatus, Project
from credits.scale import COORDINATOR_PHONE, LONG_HISTORY_PHONE, SCALE_PASSWORD
from credits.timeutil import local_zone, utcnow

SIZE = ["--volunteers", "300", "--projects", "12", "--records", "3000", "--seed", "7"]


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def seeded(runner):
    result = runner.invoke(args=["credits", "seed-scale", *SIZE])
    assert result.exit_code == 0, result.output
    db.session.rollback()
    return result


def test_seed_scale_writes_what_was_asked_and_the_ledger_verifies(runner, seeded):
    volunteers = select(UserRole.user_id).where(UserRole.role == Role.VOLUNTEER)
    assert (count(User, User.id.in_(volunteers)), count(Project), count(ServiceRecord)) == (300, 12, 3000)
    statuses = dict(db.session.execute(select(ServiceRecord.status, func.count()).group_by(ServiceRecord.status)).all())
    assert statuses[RecordStatus.APPROVED] > 2500 and statuses.get(RecordStatus.REJECTED, 0) > 0
    assert count(Voucher, Voucher.status == VoucherStatus.REDEEMED) > 0

    verified = runner.invoke(args=["credits", "verify-ledger"])
    assert verified.exit_code == 0, verified.output
    assert "ledger ok" in verified.output
    assert f"{COORDINATOR_PHONE} / {SCALE_PASSWORD}" in seeded.output
    assert authenticate(LONG_HISTORY_PHONE, SCALE_PASSWORD).phone == LONG_HISTORY_PHONE


def test_seed_scale_keeps_the_claim_and_hour_rules(seeded):
    for project in db.session.scalars(select(Project)):
        taken = count(Claim, Claim.project_id == project.id,
                      Claim.status.in_((ClaimStatus.CONFIRMED, ClaimStatus.NO_SHOW)))
        assert project.confirmed_count == taken <= project.capacity
    live = (select(Claim.project_id, Claim.volunteer_id).group_by(Claim.project_id, Claim.volunteer_id)
            .having(func.count() > 1))
    assert db.session.execute(live).all() == []

    mine, other = aliased(ServiceRecord), aliased(ServiceRecord)
    overlaps = select(func.count()).select_from(mine).join(other, (other.volunteer_id == mine.volunteer_id)
                                                           & (other.id > mine.id)).where(
        mine.status.in_(HOLDING_TIME), other.status.in_(HOLDING_TIME),
        mine.started_at < other.ended_at, other.started_at < mine.ended_at)
    assert db.session.scalar(overlaps) == 0

    per_day: dict[tuple, int] = defaultdict(int)
    approved: dict[int, int] = defaultdict(int)
    now = utcnow()
    for record in db.session.scalars(select(ServiceRecord)):
        assert record.claim.status == ClaimStatus.CONFIRMED and record.claim.volunteer_id == record.volunteer_id
        assert record.project.starts_at <= record.started_at < record.ended_at <= record.project.ends_at <= now
        assert record.minutes == (record.ended_at - record.started_at) // timedelta(minutes=1) <= 720
        if record.status in HOLDING_TIME:
            per_day[(record.volunteer_id, record.started_at.astimezone(local_zone()).date())] += record.minutes
        if record.status == RecordStatus.APPROVED:
            approved[record.volunteer_id] += record.minutes
    assert max(per_day.values()) <= 720
    for user in db.session.scalars(select(User).where(User.approved_minutes > 0)):
        assert user.approved_minutes == approved.pop(user.id)
    assert not approved

    escrow = db.session.scalar(select(Account.balance).where(Account.system_code == SystemAccount.ESCROW))
    assert escrow >= 0
    for voucher in db.session.scalars(select(Voucher).where(Voucher.status == VoucherStatus.ISSUED)):
        assert voucher.expires_at > now


def test_seed_scale_refuses_a_database_that_already_has_projects(runner, seeded):
    again = runner.invoke(args=["credits", "seed-scale", *SIZE])

    assert again.exit_code == 2
    assert "refused" in again.output and "12 projects" in again.output
    assert count(Project) == 12


def test_seed_scale_spreads_organisations_from_20_to_2000_members_with_party_members(app, seeded):
    from credits.scale import MEMBER_SHARE, MEMBERS_MAX, MEMBERS_MIN, Scale, _Seeder

    sizes = _Seeder(Scale(volunteers=100_000), echo=print).organization_sizes()
    assert min(sizes) >= MEMBERS_MIN and max(sizes) <= MEMBERS_MAX
    assert max(sizes) > 1_000 and sorted(sizes)[len(sizes) // 2] < 500  # a spread: many small, a few large
    assert 100_000 * MEMBER_SHARE <= sum(sizes) <= 100_000 * MEMBER_SHARE + MEMBERS_MAX

    volunteers = select(UserRole.user_id).where(UserRole.role == Role.VOLUNTEER)
    in_orgs = count(User, User.id.in_(volunteers), User.organization_id.isnot(None))
    assert int(300 * MEMBER_SHARE) - 30 <= in_orgs <= int(300 * MEMBER_SHARE)  # 30 named sizes, each rounded down
    assert 0 < count(User, User.party_member.is_(True)) < in_orgs
