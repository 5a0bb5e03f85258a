"""Delivery on the job queue: after commit only the delivery id travels; the worker sends each message once
however often its job runs, two workers on one delivery send it once, a worker killed between the channel's
acceptance and the row's `sent` does not send twice, and the sweep takes up what a crash or an unreachable Redis
left behind. Failures are listed for the admin, who can queue them again."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from redis import Redis
from rq import Queue
from sqlalchemy import select, update

from credits.extensions import db
from credits.notifications import delivery as delivery_module
from credits.notifications.channels import FileChannel
from credits.notifications.delivery import deliver, sweep
from credits.notifications.models import Delivery
from credits.notifications.services import notify, send_text
from credits.notifications.worker import QUEUE_NAME, run
from credits.timeutil import utcnow
from tests.conftest import csrf_token
from tests.races import race

pytestmark = pytest.mark.usefixtures("daytime")


def tell(user, title: str = "敬老院探访"):
    note = notify(user, "promotion", title=title, starts_at=utcnow() + timedelta(days=2), location="敬老院")
    db.session.commit()
    return note


class Seen:
    def __init__(self, delivery: Delivery) -> None:
        self.id, self.status, self.attempts = delivery.id, delivery.status, delivery.attempts


def the_delivery() -> Seen:
    """The one delivery as it is now, read in a transaction that is ended at once: on SQLite, a test holding
    one would keep the worker from writing."""
    db.session.rollback()
    seen = Seen(db.session.scalars(select(Delivery)).one())
    db.session.rollback()
    return seen


@pytest.fixture
def queued(app, redis_url):
    """The app hands deliveries to RQ on the test session's own Redis, emptied for each test."""
    Redis.from_url(redis_url).flushdb()
    app.config["REDIS_URL"] = redis_url
    app.extensions.pop("credits.sms_queue", None)
    yield Queue(QUEUE_NAME, connection=Redis.from_url(redis_url))
    app.extensions.pop("credits.sms_queue", None)


def test_with_redis_commit_enqueues_the_id_and_the_worker_sends_it_once(app, volunteer, sms_file, queued):
    tell(volunteer)

    assert queued.count == 1 and sms_file() == []
    assert the_delivery().status == "queued"
    run(app, burst=True)
    run(app, burst=True)

    assert [line["to"] for line in sms_file()] == [volunteer.phone]
    assert the_delivery().status == "sent"


def test_a_job_run_twice_sends_once(app, volunteer, sms_file, queued):
    tell(volunteer)
    job_id = the_delivery().id
    queued.enqueue("credits.notifications.worker.deliver_job", job_id)  # a duplicate, as a re-run would make

    run(app, burst=True)

    assert len(sms_file()) == 1 and queued.count == 0


def test_two_workers_on_one_delivery_send_it_once(app, volunteer, sms_file, monkeypatch):
    monkeypatch.setattr("credits.notifications.dispatch._deliver_all", lambda app, ids: None)  # the racers do
    tell(volunteer)
    delivery_id = the_delivery().id
    sends = []

    class Slow(FileChannel):
        def send(self, **kwargs):
            sends.append(threading.get_ident())
            time.sleep(0.2)
            super().send(**kwargs)

    channel = Slow(sms_file.path)
    results, _ = race(app, [lambda: deliver(delivery_id, channel)] * 2, unit=False)

    assert sorted(results) == ["sent", "skipped"]
    assert len(sends) == 1 and len(sms_file()) == 1


def test_worker_killed_after_the_channel_accepted_sends_no_second_sms(app, volunteer, sms_file, monkeypatch):
    monkeypatch.setattr("credits.notifications.dispatch._deliver_all", lambda app, ids: None)
    tell(volunteer)
    delivery_id = the_delivery().id

    class Killed(FileChannel):
        def send(self, **kwargs):
            super().send(**kwargs)
            raise SystemExit(-9)  # the process dies before the row says `sent`

    with pytest.raises(SystemExit):
        deliver(delivery_id, Killed(sms_file.path))
    db.session.rollback()
    assert the_delivery().status == "sending"
    assert sweep() == []  # too early: the worker might still be at it

    later = utcnow() + timedelta(seconds=app.config["SMS_SENDING_TIMEOUT"] + 1)
    assert sweep(now=later) == [delivery_id]
    monkeypatch.setattr(delivery_module, "utcnow", lambda: later)
    assert deliver(delivery_id) == "sent"

    assert len(sms_file()) == 1
    assert (the_delivery().status, the_delivery().attempts) == ("sent", 2)


def test_unreachable_redis_fails_no_commit_and_the_sweep_sends_later(app, volunteer, sms_file, monkeypatch):
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens there
    note = tell(volunteer)

    assert note.id is not None and the_delivery().status == "queued"
    assert sms_file() == []

    app.config["REDIS_URL"] = None
    later = utcnow() + timedelta(seconds=app.config["SMS_REQUEUE_AFTER"] + 1)
    monkeypatch.setattr(delivery_module, "utcnow", lambda: later)
    run(app, burst=True)  # without Redis the worker polls the database

    assert len(sms_file()) == 1 and the_delivery().status == "sent"


def test_sweep_leaves_held_and_recent_deliveries_alone(app, volunteer, sms_file, monkeypatch):
    monkeypatch.setattr("credits.notifications.dispatch._deliver_all", lambda app, ids: None)
    tell(volunteer, "刚刚")
    tell(volunteer, "晚上")
    db.session.execute(update(Delivery).where(Delivery.id == 2).values(not_before=utcnow() + timedelta(hours=9)))
    db.session.commit()
    assert sorted(db.session.scalars(select(Delivery.status))) == ["queued", "queued"]

    assert sweep() == []  # the first was just handed on; the second is held
    later = utcnow() + timedelta(seconds=app.config["SMS_REQUEUE_AFTER"] + 1)
    assert sweep(now=later) == [1]


def test_admin_sees_failed_deliveries_and_can_queue_one_again(app, volunteer, make_user, browser, sms_file,
                                                              monkeypatch):
    app.config["SMS_MAX_ATTEMPTS"] = 1

    class Down:
        def send(self, **_):
            raise ConnectionError("provider says 500")

    monkeypatch.setattr(delivery_module, "current_channel", Down)
    tell(volunteer)
    send_text(volunteer.phone, kind="verification_code", text="验证码 111111", key="code:9")
    db.session.commit()
    admin = make_user("admin", name="管理员")
    page = browser(admin)

    html = page.get("/admin/deliveries").get_data(as_text=True)
    assert html.count("data-delivery=") == 2 and "provider says 500" in html
    assert browser(volunteer).get("/admin/deliveries").status_code == 403

    monkeypatch.undo()
    token = csrf_token(page, "/admin/deliveries")
    assert page.post("/admin/deliveries/1/retry", data={"csrf_token": token}).status_code == 302
    assert len(sms_file()) == 1
    # A code's text is not kept once its delivery is over: it cannot be sent again.
    assert page.post("/admin/deliveries/2/retry", data={"csrf_token": token}).status_code == 409
