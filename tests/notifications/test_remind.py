"""`flask credits remind`: the 24 h and 2 h reminders exactly once per confirmed claim however often (and however
many at once) it runs, none for cancelled claims or projects; the voucher and coin expiry notices once each."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from credits.extensions import db
from credits.ledger.models import SystemAccount, TxKind
from credits.ledger.services import system_account, transfer, user_account
from credits.merchants.models import Service, Voucher
from credits.notifications.models import Notification
from credits.notifications.reminders import remind
from credits.projects import services as projects
from credits.timeutil import local_zone, utcnow
from tests.hours.helpers import ledger_dated
from tests.races import race

_titles = itertools.count(1)

# Sending is checked at 11:00: the quiet hours' hold of a 24 h reminder has its own tests (test_notify.py).
pytestmark = pytest.mark.usefixtures("daytime")


@pytest.fixture
def project_in(coordinator):
    """project_in(hours) → a published project starting that many hours from now."""

    def factory(hours: float, capacity: int = 10):
        now = utcnow()
        project = projects.create_project({
            "title": f"健康加油站{next(_titles)}", "category": "健康", "location": "奉城镇社区卫生服务中心",
            "starts_at": now + timedelta(hours=hours), "ends_at": now + timedelta(hours=hours + 3),
            "capacity": capacity, "waitlist_capacity": capacity}, actor=coordinator)
        projects.publish(project, actor=coordinator)
        db.session.commit()
        return project

    return factory


@pytest.fixture
def claimants(make_user):
    def factory(project, n: int):
        claims = []
        for i in range(n):
            claims.append(projects.claim(project, volunteer=make_user(name=f"志愿者{i}")))
        db.session.commit()
        return claims

    return factory


def reminders(label: str | None = None) -> list[str]:
    db.session.rollback()
    query = select(Notification.key).where(Notification.kind == "reminder").order_by(Notification.key)
    if label:
        query = query.where(Notification.key.like(f"reminder:{label}:%"))
    return list(db.session.scalars(query))


def test_the_24h_and_2h_reminders_go_once_per_claim_however_often_remind_runs(app, runner, sms_file, project_in,
                                                                              claimants):
    project = project_in(20)
    claims = claimants(project, 3)
    first = runner.invoke(args=["credits", "remind"])
    assert first.exit_code == 0, first.output
    assert "reminders_24h: 3" in first.output
    assert runner.invoke(args=["credits", "remind"]).output.startswith("reminders_24h: 0")
    assert reminders("24h") == sorted(f"reminder:24h:claim:{c.id}" for c in claims)
    assert sorted(t["to"] for t in sms_file()) == sorted(c.volunteer.phone for c in claims)
    assert all(project.title in t["text"] for t in sms_file())

    later = utcnow() + timedelta(hours=19)  # an hour before the start
    assert remind(later)["reminders_2h"] == 3
    assert remind(later) == {"reminders_24h": 0, "reminders_2h": 0, "voucher_expiring": 0, "coins_expiring": 0}
    assert len(reminders("2h")) == 3 and len(reminders()) == 6
    assert len(sms_file()) == 6


def test_a_project_starting_within_2_hours_gets_only_the_2h_reminder(app, sms_file, project_in, claimants):
    claimants(project_in(1.5), 1)
    assert remind()["reminders_2h"] == 1
    assert remind(utcnow() + timedelta(minutes=5))["reminders_24h"] == 0
    assert [key.split(":")[1] for key in reminders()] == ["2h"]


def test_nothing_is_due_for_a_project_more_than_24_hours_ahead_or_already_started(app, sms_file, project_in,
                                                                                   claimants):
    claimants(project_in(25), 1)
    assert sum(remind().values()) == 0
    assert sum(remind(utcnow() + timedelta(hours=26)).values()) == 0  # it has started: too late to remind
    assert reminders() == []


def test_cancelled_claims_and_cancelled_projects_are_not_reminded(app, sms_file, project_in, claimants,
                                                                  coordinator):
    kept, dropped = claimants(project_in(10), 2)
    projects.cancel_claim(dropped, actor=dropped.volunteer)
    cancelled = project_in(10)
    claimants(cancelled, 2)
    projects.cancel_project(cancelled, actor=coordinator)
    db.session.commit()
    assert remind()["reminders_24h"] == 1
    assert reminders() == [f"reminder:24h:claim:{kept.id}"]


def test_waitlisted_claims_are_not_reminded_until_promoted(app, sms_file, project_in, claimants):
    project = project_in(10, capacity=1)
    confirmed, waiting = claimants(project, 2)
    assert waiting.status == "waitlisted"
    assert remind()["reminders_24h"] == 1
    projects.cancel_claim(confirmed, actor=confirmed.volunteer)
    db.session.commit()
    assert remind()["reminders_24h"] == 1  # the promoted one
    assert reminders() == sorted([f"reminder:24h:claim:{confirmed.id}", f"reminder:24h:claim:{waiting.id}"])


@pytest.mark.parametrize("runs", [2, 4])
def test_concurrent_remind_runs_send_each_reminder_once(app, sms_file, project_in, claimants, runs):
    claims = claimants(project_in(20), 6) + claimants(project_in(1), 4)
    results, _ = race(app, [remind] * runs, unit=False)
    assert all(isinstance(r, dict) for r in results), results
    assert sum(r["reminders_24h"] for r in results) == 6
    assert sum(r["reminders_2h"] for r in results) == 4
    assert len(reminders()) == len(claims) == 10
    texts = sms_file()
    assert len(texts) == 10 and len({t["key"] for t in texts}) == 10


def test_a_voucher_expiring_within_3_days_gets_one_notice(app, sms_file, volunteer, make_merchant):
    shop = make_merchant("奉城老街洗车行")
    service = Service(merchant=shop, name="精洗一次", price=2)
    db.session.add(service)
    now = utcnow()
    for code, expires_in in (("A1", timedelta(days=2)), ("B2", timedelta(days=5)), ("C3", -timedelta(hours=1))):
        db.session.add(Voucher(code=code, volunteer_id=volunteer.id, service=service, merchant=shop, coins=2,
                               day=now.date(), expires_at=now + expires_in))
    db.session.commit()
    assert remind()["voucher_expiring"] == 1
    assert remind()["voucher_expiring"] == 0
    [text] = sms_file()
    assert text["to"] == volunteer.phone and "精洗一次" in text["text"] and text["kind"] == "voucher_expiring"


def test_coins_expiring_at_new_year_get_one_notice_with_the_amount(app, sms_file, volunteer, set_policy):
    now = utcnow()
    local_year = now.astimezone(local_zone()).year
    with ledger_dated(datetime(local_year - 1, 6, 1, tzinfo=local_zone())):
        transfer(TxKind.ADJUST, system_account(SystemAccount.ISSUANCE), user_account(volunteer.id), 7, memo="旧币")
    db.session.commit()
    set_policy(coin_expiry="end_of_next_year")
    new_year = datetime(local_year + 1, 1, 1, tzinfo=local_zone())
    assert remind(new_year - timedelta(days=4))["coins_expiring"] == 0  # not yet within 3 days
    assert remind(new_year - timedelta(days=2))["coins_expiring"] == 1
    assert remind(new_year - timedelta(days=1))["coins_expiring"] == 0
    [text] = sms_file()
    assert "7" in text["text"] and text["kind"] == "coins_expiring"


def test_without_coin_expiry_no_coin_notice_is_sent(app, sms_file, volunteer):
    local_year = utcnow().astimezone(local_zone()).year
    with ledger_dated(datetime(local_year - 1, 6, 1, tzinfo=local_zone())):
        transfer(TxKind.ADJUST, system_account(SystemAccount.ISSUANCE), user_account(volunteer.id), 7, memo="旧币")
    db.session.commit()
    assert remind(datetime(local_year + 1, 1, 1, tzinfo=local_zone()) - timedelta(days=1))["coins_expiring"] == 0
    assert db.session.scalar(select(func.count()).select_from(Notification)) == 0
