"""notify() writes the inbox row and the SMS delivery in the event's own transaction; after commit the SMS goes
out through the configured channel; a rolled-back event leaves nothing and sends nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from credits.extensions import db
from credits.notifications import delivery as delivery_module
from credits.notifications import services
from credits.notifications.channels import FileChannel, make_channel
from credits.notifications.delivery import deliver
from credits.notifications.models import Delivery, Notification
from credits.notifications.services import notify, quiet_until, send_text, update_sms_settings
from tests.notifications.conftest import DAYTIME

NIGHT = datetime(2026, 12, 5, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_committed_event_has_its_inbox_row_and_its_sms_in_the_file_backend(app, volunteer, sms_file, at):
    at(DAYTIME)
    notify(volunteer, "project_cancelled", link="/projects/7", title="敬老院探访",
           starts_at=datetime(2026, 12, 6, 2, 0, tzinfo=UTC))
    db.session.commit()

    note = db.session.scalars(select(Notification)).one()
    assert (note.user_id, note.kind, note.link, note.read_at) == (volunteer.id, "project_cancelled", "/projects/7",
                                                                  None)
    delivery = db.session.scalars(select(Delivery)).one()
    assert (delivery.status, delivery.attempts, delivery.to) == ("sent", 1, volunteer.phone)
    [line] = sms_file()
    assert set(line) == {"to", "kind", "text", "sent_at", "key"}
    assert (line["to"], line["kind"], line["key"]) == (volunteer.phone, "project_cancelled", delivery.key)
    assert "敬老院探访" in line["text"] and "12-06 10:00" in line["text"]  # shown in Shanghai time
    datetime.fromisoformat(line["sent_at"])


def test_rolled_back_event_has_no_inbox_row_and_sends_nothing(app, volunteer, sms_file, at):
    at(DAYTIME)
    notify(volunteer, "promotion", title="敬老院探访", starts_at=DAYTIME + timedelta(days=2), location="敬老院")
    db.session.flush()
    db.session.rollback()
    db.session.commit()  # a later, empty commit must not send what the rolled-back transaction queued

    assert count(Notification) == 0
    assert count(Delivery) == 0
    assert sms_file() == []


def test_inbox_title_and_body_are_rendered_from_the_kinds_template_and_params(app, volunteer, sms_file, at):
    at(DAYTIME)
    notify(volunteer, "hours_rejected", title="敬老院探访", reason="照片不清")
    db.session.commit()

    note = db.session.scalars(select(Notification)).one()
    title, body = services.title_and_body(note, "zh_CN")
    assert title == "服务时长未通过审核" and "照片不清" in body


def test_kind_the_person_opted_out_of_gets_an_inbox_row_but_no_sms(app, volunteer, sms_file, at):
    at(DAYTIME)
    update_sms_settings({"project_cancelled": False}, user=volunteer)
    notify(volunteer, "project_cancelled", title="敬老院探访", starts_at=DAYTIME + timedelta(days=1))
    notify(volunteer, "redemption", merchant="老街理发", service="理发", coins=30)  # off by default
    db.session.commit()

    assert count(Notification) == 2
    assert count(Delivery) == 0
    assert sms_file() == []


def test_quiet_hours_hold_the_sms_until_eight_but_not_the_inbox(app, volunteer, sms_file, at):
    at(NIGHT)
    notify(volunteer, "project_changed", title="敬老院探访", starts_at=NIGHT + timedelta(days=3), location="敬老院")
    db.session.commit()

    assert count(Notification) == 1
    delivery = db.session.scalars(select(Delivery)).one()
    assert delivery.status == "queued"
    assert delivery.not_before == datetime(2026, 12, 6, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
    assert sms_file() == []

    at(datetime(2026, 12, 6, 0, 1, tzinfo=UTC))
    assert deliver(delivery.id) == "sent"
    assert len(sms_file()) == 1


def test_promotion_for_a_project_within_twelve_hours_is_sent_in_quiet_hours(app, volunteer, sms_file, at):
    at(NIGHT)
    notify(volunteer, "promotion", title="早市志愿", starts_at=NIGHT + timedelta(hours=9), location="菜场")
    notify(volunteer, "promotion", title="周末志愿", starts_at=NIGHT + timedelta(hours=13), location="菜场")
    db.session.commit()

    assert [line["text"].count("早市志愿") for line in sms_file()] == [1]
    assert db.session.scalars(select(Delivery.status).order_by(Delivery.id)).all() == ["sent", "queued"]


@pytest.mark.parametrize(("local_hour", "held"), [(7, True), (8, False), (21, False), (22, True), (0, True)])
def test_quiet_hours_run_from_ten_at_night_to_eight_in_the_morning(app, local_hour, held):
    moment = datetime(2026, 12, 5, local_hour, 30, tzinfo=UTC) - timedelta(hours=8)
    assert (quiet_until(moment) is not None) is held


def test_send_text_queues_an_sms_without_inbox_row_and_forgets_the_text_once_sent(app, volunteer, sms_file, at):
    at(NIGHT)  # a code is awaited: no quiet hours
    send_text(volunteer.phone, kind="verification_code", text="验证码 123456", key="code:1")
    db.session.commit()

    assert count(Notification) == 0
    delivery = db.session.scalars(select(Delivery)).one()
    assert (delivery.status, delivery.text) == ("sent", None)
    assert [line["text"] for line in sms_file()] == ["验证码 123456"]


def test_crashing_channel_fails_neither_the_commit_nor_the_inbox_and_the_delivery_waits_to_retry(
        app, volunteer, at, monkeypatch):
    at(DAYTIME)

    class Broken:
        def send(self, **_):
            raise ConnectionError("provider down")

    monkeypatch.setattr(delivery_module, "current_channel", Broken)
    notify(volunteer, "promotion", title="敬老院探访", starts_at=DAYTIME + timedelta(days=2), location="敬老院")
    db.session.commit()

    assert count(Notification) == 1
    delivery = db.session.scalars(select(Delivery)).one()
    assert (delivery.status, delivery.attempts) == ("queued", 1)
    assert "provider down" in delivery.last_error
    assert delivery.not_before == DAYTIME + timedelta(seconds=30)


def test_delivery_fails_for_good_after_its_last_attempt(app, volunteer, at, monkeypatch):
    app.config["SMS_MAX_ATTEMPTS"] = 2
    moment = DAYTIME
    at(moment)

    class Broken:
        def send(self, **_):
            raise TimeoutError("slow provider")

    monkeypatch.setattr(delivery_module, "current_channel", Broken)
    send_text(volunteer.phone, kind="verification_code", text="验证码 654321", key="code:2")
    db.session.commit()
    at(moment + timedelta(minutes=5))
    delivery_id = db.session.scalar(select(Delivery.id))
    assert deliver(delivery_id) == "failed"

    delivery = db.session.get(Delivery, delivery_id, populate_existing=True)
    assert (delivery.status, delivery.attempts, delivery.text) == ("failed", 2, None)


def test_file_backend_writes_a_key_once_however_often_it_is_sent(tmp_path):
    channel = make_channel(f"file:{tmp_path / 'sms.jsonl'}")
    assert isinstance(channel, FileChannel)
    for _ in range(3):
        channel.send(key="notification:1", to="13800000000", kind="promotion", text="您已获得名额")
    channel.send(key="notification:2", to="13800000000", kind="promotion", text="您已获得名额")

    lines = [json.loads(line) for line in (tmp_path / "sms.jsonl").read_text().splitlines()]
    assert [line["key"] for line in lines] == ["notification:1", "notification:2"]


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError):
        make_channel("pigeon")


def test_notify_with_the_same_key_adds_nothing_the_second_time(app, volunteer, sms_file, at):
    at(DAYTIME)
    first = notify(volunteer, "reminder", key="reminder:24h:claim:1", title="敬老院探访",
                   starts_at=DAYTIME + timedelta(hours=24), location="敬老院")
    db.session.commit()
    second = notify(volunteer, "reminder", key="reminder:24h:claim:1", title="敬老院探访",
                    starts_at=DAYTIME + timedelta(hours=24), location="敬老院")
    db.session.commit()

    assert first is not None and second is None
    assert count(Notification) == 1 and len(sms_file()) == 1


def test_savepoints_inside_the_event_neither_send_early_nor_lose_the_sms(app, volunteer, sms_file, at):
    at(DAYTIME)
    notify(volunteer, "promotion", title="第一", starts_at=DAYTIME + timedelta(days=2), location="敬老院")
    with db.session.begin_nested():  # as redeem() does for its idempotency key
        db.session.flush()
    assert sms_file() == []  # a released savepoint is not a commit
    savepoint = db.session.begin_nested()
    notify(volunteer, "promotion", title="第二", starts_at=DAYTIME + timedelta(days=2), location="敬老院")
    savepoint.rollback()
    db.session.commit()

    assert [line["text"].count("第一") for line in sms_file()] == [1]
    assert count(Notification) == 1
