"""Sign-in throttling: 5 failures in 15 minutes per phone and per address, on the page and the token endpoint
alike; then even the right password gets 429 rate_limited. Successful sign-ins are not counted."""

from __future__ import annotations

import time
from unittest import mock

import pytest
from flask_limiter import RequestLimit
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.conftest import csrf_token

PASSWORD = "password123"
WRONG = "wrong-password"


def api_sign_in(client, phone: str, password: str, address: str = "127.0.0.1"):
    return client.post("/api/v1/auth/token", json={"phone": phone, "password": password},
                       environ_base={"REMOTE_ADDR": address})


def page_sign_in(client, phone: str, password: str, address: str = "127.0.0.1"):
    return client.post("/login", data={"phone": phone, "password": password,
                                       "csrf_token": csrf_token(client, "/register")},
                       environ_base={"REMOTE_ADDR": address})


SIGN_INS = {"api": api_sign_in, "page": page_sign_in}
FAILED_STATUS = {"api": 401, "page": 422}
SUCCESS_STATUS = {"api": 201, "page": 302}


@pytest.mark.parametrize("via", ["api", "page"])
def test_the_sixth_attempt_on_a_phone_after_five_failures_is_refused_even_with_the_right_password(
        client, make_user, via):
    sign_in = SIGN_INS[via]
    user = make_user()
    for attempt in range(5):  # each from its own address, so only the per-phone limit can apply
        assert sign_in(client, user.phone, WRONG, f"10.0.0.{attempt}").status_code == FAILED_STATUS[via]
    response = sign_in(client, user.phone, PASSWORD, "10.0.1.1")
    assert response.status_code == 429
    if via == "api":
        assert response.json["error"]["code"] == "rate_limited"
        assert "token" not in response.json


def test_a_refusal_says_when_to_retry_even_if_redis_goes_away_before_the_window_is_read(client, make_user):
    user = make_user()
    for attempt in range(5):
        api_sign_in(client, user.phone, WRONG, f"10.0.0.{attempt}")
    with mock.patch.object(RequestLimit, "reset_at", new_callable=mock.PropertyMock,
                           side_effect=RedisConnectionError("Connection refused")):
        response = api_sign_in(client, user.phone, PASSWORD, "10.0.1.1")

    assert response.status_code == 429 and response.json["error"]["code"] == "rate_limited"
    assert response.headers["Retry-After"] == str(15 * 60)  # the whole window of 5 per 15 minutes


@pytest.mark.parametrize("via", ["api", "page"])
def test_five_failures_leave_the_phone_open_to_a_correct_sixth_attempt_only_below_the_limit(
        client, make_user, via):
    sign_in = SIGN_INS[via]
    user = make_user()
    for attempt in range(4):
        sign_in(client, user.phone, WRONG, f"10.0.0.{attempt}")
    assert sign_in(client, user.phone, PASSWORD, "10.0.1.1").status_code == SUCCESS_STATUS[via]


def test_a_throttled_phone_cannot_sign_in_on_the_page_either(client, make_user):
    user = make_user()
    for attempt in range(5):
        api_sign_in(client, user.phone, WRONG, f"10.0.0.{attempt}")
    assert page_sign_in(client, user.phone, PASSWORD, "10.0.1.1").status_code == 429
    assert client.get("/account").status_code == 302


def test_failures_on_the_page_and_the_api_count_together(client, make_user):
    user = make_user()
    for attempt in range(3):
        assert api_sign_in(client, user.phone, WRONG, f"10.0.0.{attempt}").status_code == 401
    for attempt in range(3, 5):
        assert page_sign_in(client, user.phone, WRONG, f"10.0.0.{attempt}").status_code == 422
    assert api_sign_in(client, user.phone, PASSWORD, "10.0.1.1").status_code == 429
    assert page_sign_in(client, user.phone, PASSWORD, "10.0.1.2").status_code == 429


def test_throttling_one_phone_leaves_other_phones_alone(client, make_user):
    victim, other = make_user(), make_user()
    for attempt in range(5):
        api_sign_in(client, victim.phone, WRONG, f"10.0.0.{attempt}")
    assert api_sign_in(client, other.phone, PASSWORD, "10.0.1.1").status_code == 201


@pytest.mark.parametrize("via", ["api", "page"])
def test_five_failures_from_one_address_throttle_every_phone_from_that_address(client, make_user, via):
    sign_in = SIGN_INS[via]
    users = [make_user() for _ in range(6)]
    for user in users[:5]:  # a different phone each time: only the per-address limit can apply
        assert sign_in(client, user.phone, WRONG, "192.0.2.7").status_code == FAILED_STATUS[via]
    assert sign_in(client, users[5].phone, PASSWORD, "192.0.2.7").status_code == 429
    assert sign_in(client, users[5].phone, PASSWORD, "192.0.2.8").status_code == SUCCESS_STATUS[via]


def test_unknown_phones_count_against_the_address(client, make_user):
    user = make_user()
    for attempt in range(5):
        api_sign_in(client, f"1390000000{attempt}", PASSWORD, "192.0.2.7")
    assert api_sign_in(client, user.phone, PASSWORD, "192.0.2.7").status_code == 429


@pytest.mark.parametrize("via", ["api", "page"])
def test_successful_sign_ins_are_not_counted(client, make_user, via):
    sign_in = SIGN_INS[via]
    user = make_user()
    for _ in range(6):
        assert sign_in(client, user.phone, PASSWORD).status_code == SUCCESS_STATUS[via]
    for _ in range(4):
        assert sign_in(client, user.phone, WRONG).status_code == FAILED_STATUS[via]
    assert sign_in(client, user.phone, PASSWORD).status_code == SUCCESS_STATUS[via]


def test_refused_input_is_not_counted_as_a_failed_sign_in(client, make_user):
    user = make_user()
    for _ in range(6):
        response = client.post("/api/v1/auth/token", json={"phone": user.phone})
        assert response.status_code == 422
    assert api_sign_in(client, user.phone, PASSWORD).status_code == 201


def test_the_window_is_15_minutes(client, make_user, monkeypatch):
    import limits.storage.memory

    class Clock:
        offset = 0.0

        def time(self) -> float:
            return time.time() + self.offset

    clock = Clock()
    monkeypatch.setattr(limits.storage.memory, "time", clock)
    user = make_user()
    for attempt in range(5):
        api_sign_in(client, user.phone, WRONG, f"10.0.0.{attempt}")
    clock.offset = 14 * 60
    assert api_sign_in(client, user.phone, PASSWORD).status_code == 429
    clock.offset = 15 * 60 + 1
    assert api_sign_in(client, user.phone, PASSWORD).status_code == 201


def test_a_throttled_address_can_still_open_the_sign_in_page(client, make_user):
    user = make_user()
    for _ in range(5):
        api_sign_in(client, user.phone, "wrong-password")
    assert api_sign_in(client, user.phone, "wrong-password").status_code == 429
    page = client.get("/login")
    assert page.status_code == 200 and 'name="csrf_token"' in page.get_data(as_text=True)
