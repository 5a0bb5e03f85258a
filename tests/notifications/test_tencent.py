"""The Tencent Cloud SMS channel against a local stand-in that checks the TC3-HMAC-SHA256 signature: messages
arrive signed; a wrong key is refused; provider errors, HTTP errors, nonsense, time-outs and a provider that is not
there are retried with the error recorded, and failed after the last attempt; none of it fails the user's request."""

from __future__ import annotations

import socket
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from credits.extensions import db
from credits.notifications.delivery import deliver
from credits.notifications.models import Delivery
from credits.notifications.services import send_text
from credits.timeutil import utcnow
from tests.notifications.tencent_standin import SECRET_ID, SECRET_KEY, StandIn


@pytest.fixture
def provider(app):
    with StandIn() as standin:
        app.config.update(SMS_BACKEND="tencent", TENCENT_SMS_ENDPOINT=standin.url, TENCENT_SECRET_ID=SECRET_ID,
                          TENCENT_SECRET_KEY=SECRET_KEY, TENCENT_SMS_APP_ID="1400000000",
                          TENCENT_SMS_TEMPLATE_ID="100001", SMS_PROVIDER_TIMEOUT=0.5)
        yield standin


def queue_text(key: str = "code:1") -> int:
    delivery = send_text("13912345678", kind="verification_code", text="【公益币】您的验证码是 123456", key=key)
    db.session.commit()  # SMS_INLINE = sync: the first attempt is made here
    return delivery.id


def row(delivery_id: int) -> Delivery:
    db.session.rollback()
    return db.session.get(Delivery, delivery_id, populate_existing=True)


def due_again(delivery_id: int) -> None:
    db.session.execute(update(Delivery).where(Delivery.id == delivery_id).values(not_before=utcnow()))
    db.session.commit()


def test_a_message_reaches_the_provider_signed(app, provider):
    delivery_id = queue_text()
    assert provider.refused == []
    [message] = provider.received
    assert message["PhoneNumberSet"] == ["+8613912345678"]
    assert message["TemplateParamSet"] == ["【公益币】您的验证码是 123456"]
    assert message["SmsSdkAppId"] == "1400000000" and message["TemplateId"] == "100001"
    assert message["SessionContext"] == "code:1"
    sent = row(delivery_id)
    assert sent.status == "sent" and sent.text is None


def test_a_request_signed_with_another_key_is_refused_and_retried(app, provider):
    app.config["TENCENT_SECRET_KEY"] = "not-the-key"
    delivery_id = queue_text()
    assert provider.refused == ["signature mismatch"] and provider.received == []
    failed = row(delivery_id)
    assert failed.status == "queued" and failed.attempts == 1 and "AuthFailure" in failed.last_error


@pytest.mark.parametrize(("mode", "error"), [("error", "LimitExceeded"), ("http500", "HTTP 500"),
                                             ("garbage", "not JSON")])
def test_a_provider_failure_is_retried_then_recorded_as_failed(app, provider, mode, error):
    app.config["SMS_MAX_ATTEMPTS"] = 2
    provider.mode = mode
    delivery_id = queue_text()
    first = row(delivery_id)
    assert first.status == "queued" and first.attempts == 1 and error in first.last_error
    assert first.not_before > utcnow()  # backoff
    due_again(delivery_id)
    assert deliver(delivery_id) == "failed"
    last = row(delivery_id)
    assert last.status == "failed" and last.attempts == 2 and error in last.last_error and last.text is None
    assert provider.received == []


def test_a_slow_provider_never_fails_the_users_request_and_the_text_goes_on_the_retry(app, client, provider):
    app.config["PHONE_VERIFICATION_DEFAULT"] = "required"
    provider.mode, provider.delay = "slow", 2.0
    started = time.monotonic()
    response = client.post("/api/v1/auth/sms-code", json={"phone": "13912345678", "purpose": "register"})
    assert response.status_code == 202
    assert time.monotonic() - started < 2.0  # the time-out, not the provider, bounds the wait
    delivery_id = db.session.scalars(select(Delivery.id)).one()
    late = row(delivery_id)
    assert late.status == "queued" and late.attempts == 1 and "timed out" in late.last_error
    provider.mode = "ok"
    due_again(delivery_id)
    assert deliver(delivery_id) == "sent"
    assert [m["PhoneNumberSet"] for m in provider.received] == [["+8613912345678"]]


def test_a_provider_that_is_not_there_never_fails_the_users_request(app, client, provider):
    app.config["PHONE_VERIFICATION_DEFAULT"] = "required"
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        app.config["TENCENT_SMS_ENDPOINT"] = f"http://127.0.0.1:{probe.getsockname()[1]}/"
    response = client.post("/api/v1/auth/sms-code", json={"phone": "13912345678", "purpose": "register"})
    assert response.status_code == 202
    delivery = row(db.session.scalars(select(Delivery.id)).one())
    assert delivery.status == "queued" and delivery.attempts == 1 and "refused" in delivery.last_error.lower()
    assert delivery.not_before - utcnow() <= timedelta(seconds=31)


def test_missing_keys_are_a_failed_attempt_not_a_crash(app, provider):
    app.config["TENCENT_SECRET_KEY"] = None
    delivery = row(queue_text())
    assert delivery.status == "queued" and "TENCENT_SECRET_KEY" in delivery.last_error
