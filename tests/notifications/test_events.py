"""The services that cause an event tell the people it concerns, in the event's own transaction: promotion from
the waitlist, a project moved or cancelled, hours approved or rejected, a redemption."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from credits.extensions import db
from credits.hours import services as hours
from credits.merchants import services as merchants
from credits.notifications.models import Delivery, Notification
from credits.notifications.services import title_and_body
from credits.projects import services as projects
from credits.timeutil import utcnow
from tests.hours.helpers import confirmed_claim, file, slot, started_project
from tests.merchants.helpers import give, make_service, make_shop, make_staff

pytestmark = pytest.mark.usefixtures("daytime")


def published(coordinator, *, capacity: int = 1, waitlist: int = 2, **extra):
    now = utcnow()
    data = {"title": "敬老院探访", "category": "助老", "location": "敬老院", "description": "",
            "starts_at": now + timedelta(days=2), "ends_at": now + timedelta(days=2, hours=3),
            "capacity": capacity, "waitlist_capacity": waitlist, **extra}
    project = projects.create_project(data, actor=coordinator)
    projects.publish(project, actor=coordinator)
    db.session.commit()
    return project


def claim(project, volunteer):
    new = projects.claim(project, volunteer=volunteer)
    db.session.commit()
    return new


def inbox(user) -> list[tuple[str, str]]:
    """(kind, body) of the user's messages, oldest first."""
    notes = db.session.scalars(select(Notification).where(Notification.user_id == user.id)
                               .order_by(Notification.id)).all()
    return [(note.kind, title_and_body(note, "zh_CN")[1]) for note in notes]


def test_volunteer_promoted_from_the_waitlist_gets_one_message_and_one_sms(
        app, coordinator, make_user, sms_file):
    project = published(coordinator)
    first, waiting = make_user(name="先到"), make_user(name="候补")
    held = claim(project, first)
    claim(project, waiting)
    assert inbox(waiting) == []

    projects.cancel_claim(held, actor=first)
    db.session.commit()

    [(kind, body)] = inbox(waiting)
    assert kind == "promotion" and "敬老院探访" in body and "敬老院" in body
    assert inbox(first) == []
    assert [(line["to"], line["kind"]) for line in sms_file()] == [(waiting.phone, "promotion")]


def test_cancelled_project_tells_every_holder_of_a_live_claim_once(app, coordinator, make_user, sms_file):
    project = published(coordinator, capacity=2, waitlist=2)
    people = [make_user(name=f"志愿者{i}") for i in range(3)]
    for person in people:
        claim(project, person)
    gone = make_user(name="已取消")
    projects.cancel_claim(claim(project, gone), actor=gone)  # no longer holds a claim: not told
    db.session.commit()

    projects.cancel_project(project, actor=coordinator)
    db.session.commit()

    for person in people:
        assert [kind for kind, _ in inbox(person)] == ["project_cancelled"]
    assert inbox(gone) == [] and inbox(coordinator) == []
    assert sorted(line["to"] for line in sms_file()) == sorted(person.phone for person in people)


def test_refused_cancellation_rolled_back_leaves_no_message(app, coordinator, make_user, sms_file):
    project = published(coordinator)
    person = make_user()
    claim(project, person)
    projects.cancel_project(project, actor=coordinator)
    db.session.flush()
    db.session.rollback()

    assert db.session.scalar(select(func.count()).select_from(Notification)) == 0
    assert db.session.scalar(select(func.count()).select_from(Delivery)) == 0
    assert sms_file() == []


def test_moved_project_tells_its_claimants_but_a_new_title_does_not(app, coordinator, make_user, sms_file):
    project = published(coordinator)
    person = make_user()
    claim(project, person)

    projects.update_project(project, {"title": "敬老院探访（新）"}, actor=coordinator)
    db.session.commit()
    assert inbox(person) == []

    projects.update_project(project, {"location": "社区活动中心"}, actor=coordinator)
    db.session.commit()
    [(kind, body)] = inbox(person)
    assert kind == "project_changed" and "社区活动中心" in body
    assert len(sms_file()) == 1


def test_approved_hours_tell_the_coins_issued_and_rejected_ones_the_reason(app, coordinator, volunteer, sms_file):
    project = started_project(coordinator, days_ago=3)
    claim_ = confirmed_claim(project, volunteer)
    kept = file(claim_, volunteer, slot(2, 120))
    refused = file(claim_, volunteer, slot(1, 60))

    coins = hours.approve(kept, reviewer=coordinator)
    hours.reject(refused, "没有签到照片", reviewer=coordinator)
    db.session.commit()

    (approved_kind, approved), (rejected_kind, rejected) = inbox(volunteer)
    assert approved_kind == "hours_approved" and f"{coins} 公益币" in approved and "2 小时" in approved
    assert rejected_kind == "hours_rejected" and "没有签到照片" in rejected
    assert sms_file() == []  # neither kind is sent by SMS unless the volunteer asks


def test_redemption_sends_a_receipt(app, coordinator, volunteer, sms_file):
    shop = make_shop(coordinator, name="老街理发")
    staff = make_staff(shop, coordinator)
    service = make_service(shop, coordinator, name="理发", price=5)
    give(volunteer, 10)
    voucher = merchants.take_voucher(service, volunteer=volunteer)
    db.session.commit()

    merchants.redeem(voucher, staff=staff)
    db.session.commit()

    [(kind, body)] = inbox(volunteer)
    assert kind == "redemption" and "老街理发" in body and "5 公益币" in body
