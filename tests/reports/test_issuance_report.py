"""The issuance integrity report (SPEC 2.3; `flask credits audit-issuance` and the admin's page): it flags what no
ledger invariant can, each pattern built here as the review found or described it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from credits.auth.services import create_user
from credits.extensions import db
from credits.hours.models import RecordSource, RecordStatus, ServiceRecord
from credits.ledger.verify import verify_ledger
from credits.reports import issuance
from credits.settings.services import get_policy
from credits.timeutil import utcnow
from tests.hours.helpers import approve, confirmed_claim, file, slot, started_project


def rows(key: str, days: int = 30) -> list:
    end = utcnow()
    return db.session.execute(issuance.SECTIONS_BY_KEY[key].query(end - timedelta(days=days), end,
                                                                 get_policy())).all()


@pytest.fixture
def second(make_user, org):
    return make_user("coordinator", name="王复核", organization=org)


def test_a_clean_town_has_nothing_to_look_into(runner, coordinator, volunteer):
    claim = confirmed_claim(started_project(coordinator, days_ago=3), volunteer)
    claim.created_at = claim.project.starts_at - timedelta(days=1)  # claimed before the project, as people do
    db.session.commit()
    approve(file(claim, volunteer, slot(1, 120)), coordinator)
    result = runner.invoke(args=["credits", "audit-issuance"])
    assert result.exit_code == 0, result.output
    assert "== by_coordinator" in result.output and "FINDING" not in result.output
    assert [tuple(r) for r in rows("by_coordinator")] == [("李协调", coordinator.phone, 1, 2, 0)]


def test_who_issued_counts_approvals_and_the_code_shown_for_automatic_ones(coordinator, second, volunteer,
                                                                           monkeypatch):
    from credits.hours import services as hours
    from tests.hours.helpers import Clock, at

    claim = confirmed_claim(started_project(coordinator, days_ago=3), volunteer)
    approve(file(claim, volunteer, slot(2, 180)), coordinator)
    clock = Clock(at(1, 9))
    monkeypatch.setattr(hours, "utcnow", clock)
    hours.check_in(claim, clock.code(claim.project, shown_by=second), volunteer=volunteer)
    clock.advance(hours=2)
    hours.check_out(claim, clock.code(claim.project, shown_by=second), volunteer=volunteer)
    db.session.commit()
    assert sorted(tuple(r) for r in rows("by_coordinator")) == [
        ("李协调", coordinator.phone, 1, 3, 0), ("王复核", second.phone, 1, 0, 2)]
    assert [tuple(r)[1:] for r in rows("by_project")] == [("健康加油站", 1.0, 1, 5)]


def test_a_rule_from_before_the_bounds_is_a_finding(coordinator, second, volunteer, runner):
    project = started_project(coordinator, days_ago=3)
    project.coins_per_block = 1000  # what the mint set, before rules were bounded
    project.block_minutes = 1
    db.session.commit()
    record = file(confirmed_claim(project, volunteer), volunteer, slot(1, 2))  # 2 blocks: 2000 coins
    approve(record, coordinator)
    approve(record, second)
    assert [tuple(r) for r in rows("above_maximum")] == [(project.id, "健康加油站", "published", 60000.0, 2000)]
    result = runner.invoke(args=["credits", "audit-issuance"])
    assert result.exit_code == 1
    assert "== above_maximum (超出政策上限的发币规则): 1 FINDING" in result.output


def test_rules_above_the_default_are_listed_not_flagged(coordinator):
    generous = started_project(coordinator, days_ago=1, block_minutes=30, coins_per_block=2)
    started_project(coordinator, days_ago=1, title="普通项目")
    assert [r[0] for r in rows("above_default")] == [generous.id]
    assert not issuance.SECTIONS_BY_KEY["above_default"].finding


def test_records_for_time_before_the_claim_are_findings(coordinator, volunteer):
    claim = confirmed_claim(started_project(coordinator, days_ago=40), volunteer)  # claimed today …
    before_claim = file(claim, volunteer, slot(10, 60))  # … for service ten days ago
    assert [r[0] for r in rows("late_records")] == [before_claim.id]


def test_records_filed_long_after_the_service_are_findings(coordinator, volunteer, set_policy):
    claim = confirmed_claim(started_project(coordinator, days_ago=40), volunteer)
    claim.created_at = claim.project.starts_at  # claimed when the project began
    db.session.commit()
    prompt, late = file(claim, volunteer, slot(10, 60)), file(claim, volunteer, slot(35, 60))
    assert rows("late_records") == []  # this town allowed 41 days then
    set_policy(manual_record_days=30)
    assert [r[0] for r in rows("late_records")] == [late.id]
    assert prompt.id != late.id


def test_a_coordinators_own_record_approved_by_nobody_else_is_a_finding(coordinator, org, make_user):
    """Such records could be made before check-ins of a project's own coordinators stopped being approved
    automatically; they stay visible."""
    both = make_user("coordinator", "volunteer", name="赵协调", organization=org)
    claim = confirmed_claim(started_project(coordinator, days_ago=3), both)
    start = utcnow() - timedelta(hours=5)
    record = ServiceRecord(claim_id=claim.id, volunteer_id=both.id, project_id=claim.project_id, started_at=start,
                           ended_at=start + timedelta(hours=2), minutes=120, source=RecordSource.CHECKIN,
                           status=RecordStatus.APPROVED, reviewed_at=utcnow())
    db.session.add(record)
    db.session.commit()
    assert [r[0] for r in rows("self_issued")] == [record.id]


def test_a_volunteer_approved_only_by_whoever_opened_their_account_is_a_finding(coordinator, make_user):
    admin = make_user("admin", name="管理员")
    puppet = create_user(phone="13700000009", name="开户小号", password="password-123", actor=admin)
    db.session.commit()
    project = started_project(coordinator, days_ago=3, coins_per_block=10)
    record = file(confirmed_claim(project, puppet), puppet, slot(1, 360))  # 60 coins: four eyes
    approve(record, coordinator)
    assert rows("approved_by_creator") == []
    approve(record, admin)  # the account's creator is the second person
    assert [tuple(r)[:3] for r in rows("approved_by_creator")] == [(puppet.id, "开户小号", "管理员")]
    assert verify_ledger() == []


def test_a_burst_of_new_accounts_claiming_one_project_is_a_finding(coordinator, make_user):
    crowded = started_project(coordinator, days_ago=1, capacity=20)
    quiet = started_project(coordinator, days_ago=1, title="普通项目", capacity=20)
    for i in range(issuance.BURST_ACCOUNTS):
        confirmed_claim(crowded, make_user("volunteer", name=f"新号{i}"))
    confirmed_claim(quiet, make_user("volunteer", name="老志愿者"))
    assert [(r[0], r[2]) for r in rows("account_bursts")] == [(crowded.id, issuance.BURST_ACCOUNTS)]


def test_the_admin_page_shows_every_section_and_pages_through_one(browser, make_user, coordinator, volunteer):
    for days in range(1, 14):
        project = started_project(coordinator, days_ago=1, title=f"项目{days}", block_minutes=30, coins_per_block=2)
        assert project.id
    admin = browser(make_user("admin", name="管理员"))
    page = admin.get("/admin/issuance").get_data(as_text=True)
    for section in issuance.SECTIONS:
        assert str(section.title) in page
    assert "查看全部 13 条" in page
    second_page = admin.get("/admin/issuance?section=above_default&per_page=10&page=2").get_data(as_text=True)
    assert second_page.count("<tr>") == 1 + 3  # the header and the last three
    assert admin.get("/admin/issuance?section=nonsense").status_code == 422
    assert browser(coordinator).get("/admin/issuance").status_code == 403
    assert browser(volunteer).post("/admin/issuance/records/1/approve").status_code in (303, 403)
