"""Sign-in throttling (credits/auth/throttle.py), on the page and the token endpoint alike: 5 failures in 15
minutes per address, 10 a day per address and phone, 20 an hour per phone from browsers its owner has not signed
in from; past a limit even the right password gets 429 rate_limited. Attempts are counted before the password is
checked; successes and refused input are given back."""

from __future__ import annotations

import os
import threading
from collections import Counter
from unittest import mock

import pytest
from limits.strategies import FixedWindowRateLimiter
from redis.exceptions import ConnectionError as RedisConnectionError

from credits.auth.throttle import DEVICE_COOKIE
from credits.extensions import db, limiter
from tests.conftest import _make_app, csrf_token, offset_clock

PASSWORD = "gongyi-test-2026"
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


def test_sixty_wrong_passwords_at_once_for_one_phone_get_five_checked_and_the_rest_refused(database_url,
                                                                                          redis_url, make_user):
    """The limit is counted before the password is checked, atomically (in Redis, as in production): 8 of 60
    were checked when it was counted after (limit 5)."""
    app = _make_app(database_url, REDIS_URL=redis_url, RATELIMIT_STORAGE_URI=redis_url)
    phone = make_user().phone
    address = f"198.51.100.{os.getpid() % 250}"  # the session's Redis outlives the test
    barrier = threading.Barrier(60)
    statuses: list[int] = []

    def attempt() -> None:
        with app.app_context():
            client = app.test_client()
            barrier.wait(timeout=30)
            statuses.append(api_sign_in(client, phone, WRONG, address).status_code)

    db.session.rollback()  # the test's own session must not hold SQLite's lock while the racers run
    with app.app_context():
        limiter.reset()
    threads = [threading.Thread(target=attempt) for _ in range(60)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert Counter(statuses) == {401: 5, 429: 55}


def test_a_refusal_says_when_to_retry_even_if_redis_goes_away_before_the_window_is_read(client, make_user):
    users = [make_user() for _ in range(6)]
    for user in users[:5]:
        api_sign_in(client, user.phone, WRONG, "10.0.0.1")
    with mock.patch.object(FixedWindowRateLimiter, "get_window_stats",
                           side_effect=RedisConnectionError("Connection refused")):
        response = api_sign_in(client, users[5].phone, PASSWORD, "10.0.0.1")

    assert response.status_code == 429 and response.json["error"]["code"] == "rate_limited"
    assert response.headers["Retry-After"] == str(15 * 60)  # the whole window of 5 per 15 minutes


@pytest.mark.parametrize("stranger_via", ["api", "page"])
def test_strangers_guessing_from_many_addresses_are_slowed_but_the_owner_still_signs_in(client, app, make_user,
                                                                                        stranger_via):
    """A stranger's 20 wrong guesses an hour for one phone (from 20 addresses, on the page or the API) stop the
    21st from anywhere new, right password or not; the owner's own browser, which signed in before, is not locked
    out."""
    guess = SIGN_INS[stranger_via]
    user = make_user()
    owner = app.test_client()
    assert page_sign_in(owner, user.phone, PASSWORD, "10.9.9.9").status_code == 302
    for attempt in range(20):
        assert guess(client, user.phone, WRONG, f"10.0.0.{attempt}").status_code == FAILED_STATUS[stranger_via]
    refused = api_sign_in(client, user.phone, PASSWORD, "10.0.1.1")
    assert refused.status_code == 429
    assert refused.json["error"]["code"] == "rate_limited" and "token" not in refused.json
    assert page_sign_in(client, user.phone, PASSWORD, "10.0.1.1").status_code == 429
    assert page_sign_in(owner, user.phone, PASSWORD, "10.9.9.9").status_code == 302
    assert page_sign_in(owner, user.phone, PASSWORD, "10.9.9.10").status_code == 302  # on the move


def test_a_forged_device_cookie_is_no_exemption(client, make_user):
    user = make_user()
    for attempt in range(20):
        api_sign_in(client, user.phone, WRONG, f"10.0.0.{attempt}")
    client.set_cookie(DEVICE_COOKIE, "W10.forged")
    assert api_sign_in(client, user.phone, PASSWORD, "10.0.1.1").status_code == 429


def test_a_throttled_address_cannot_sign_in_on_the_page_either(client, make_user):
    users = [make_user() for _ in range(6)]
    for user in users[:5]:
        api_sign_in(client, user.phone, WRONG, "10.0.0.1")
    assert page_sign_in(client, users[5].phone, PASSWORD, "10.0.0.1").status_code == 429
    assert client.get("/account").status_code == 302


def test_failures_on_the_page_and_the_api_count_together(client, make_user):
    users = [make_user() for _ in range(6)]
    for user in users[:3]:
        assert api_sign_in(client, user.phone, WRONG, "10.0.0.1").status_code == 401
    for user in users[3:5]:
        assert page_sign_in(client, user.phone, WRONG, "10.0.0.1").status_code == 422
    assert api_sign_in(client, users[5].phone, PASSWORD, "10.0.0.1").status_code == 429
    assert page_sign_in(client, users[5].phone, PASSWORD, "10.0.0.1").status_code == 429


def test_throttling_one_phone_leaves_other_phones_alone(client, make_user):
    victim, other = make_user(), make_user()
    for attempt in range(20):
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


@pytest.fixture
def clock(monkeypatch):
    import limits.storage.memory

    return offset_clock(monkeypatch, limits.storage.memory)


def test_the_address_window_is_15_minutes(client, make_user, clock):
    users = [make_user() for _ in range(6)]
    for user in users[:5]:
        api_sign_in(client, user.phone, WRONG, "10.0.0.1")
    clock.offset = 14 * 60
    assert api_sign_in(client, users[5].phone, PASSWORD, "10.0.0.1").status_code == 429
    clock.offset = 15 * 60 + 1
    assert api_sign_in(client, users[5].phone, PASSWORD, "10.0.0.1").status_code == 201


def test_one_address_guessing_one_phone_gets_ten_tries_a_day_not_five_every_quarter_hour(client, make_user, clock):
    user = make_user()
    for window in range(2):
        clock.offset = window * (15 * 60 + 1)
        for _ in range(5):
            assert api_sign_in(client, user.phone, WRONG, "10.0.0.1").status_code == 401
    clock.offset = 2 * (15 * 60 + 1)
    assert api_sign_in(client, user.phone, PASSWORD, "10.0.0.1").status_code == 429
    assert api_sign_in(client, user.phone, PASSWORD, "10.0.0.2").status_code == 201  # the owner elsewhere
    clock.offset = 24 * 3600 + 1
    assert api_sign_in(client, user.phone, PASSWORD, "10.0.0.1").status_code == 201


def test_a_throttled_address_can_still_open_the_sign_in_page(client, make_user):
    user = make_user()
    for _ in range(5):
        api_sign_in(client, user.phone, "wrong-password")
    assert api_sign_in(client, user.phone, "wrong-password").status_code == 429
    page = client.get("/login")
    assert page.status_code == 200 and 'name="csrf_token"' in page.get_data(as_text=True)
