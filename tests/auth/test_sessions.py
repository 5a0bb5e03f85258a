"""Web sessions end after the policy's idle period (7 days; 12 hours for admins), remember cookie and all; and
nothing a signed-in person sees may be stored by a cache (credits/auth/sessions.py)."""

from __future__ import annotations

import time

import pytest

from credits.auth import sessions
from tests.conftest import offset_clock

HOUR = 3600


@pytest.fixture
def clock(monkeypatch):
    return offset_clock(monkeypatch, sessions)


@pytest.mark.parametrize("remember", [False, True])
def test_a_volunteer_idle_for_seven_days_is_signed_out_but_not_after_six(client, make_user, login, clock, remember):
    login(make_user(), remember=remember)
    assert client.get("/account").status_code == 200
    clock.offset = 6 * 24 * HOUR
    assert client.get("/account").status_code == 200  # and that request counts as activity
    clock.offset = 12 * 24 * HOUR + 60
    assert client.get("/account").status_code == 200  # six days after the last request, not after sign-in
    clock.offset = 19 * 24 * HOUR + 120
    ended = client.get("/account")
    assert ended.status_code == 302 and "/login" in ended.headers["Location"]
    assert client.get("/account").status_code == 302  # the remember cookie does not sign back in
    page = client.get("/login").get_data(as_text=True)
    assert "自动退出" in page


def test_an_admin_is_signed_out_after_twelve_idle_hours(client, make_user, login, clock):
    login(make_user("admin"), remember=True)
    assert client.get("/admin/policy").status_code == 200
    clock.offset = 11 * HOUR
    assert client.get("/admin/policy").status_code == 200
    clock.offset = 23 * HOUR + 120
    assert client.get("/admin/policy").status_code == 302


def test_the_idle_periods_are_policy(client, make_user, login, clock, set_policy):
    set_policy(session_idle_days=1)
    login(make_user())
    clock.offset = 24 * HOUR + 120
    assert client.get("/account").status_code == 302


def test_the_remember_cookie_lasts_the_idle_period_not_thirty_days(client, make_user, login):
    response = login(make_user("admin"), remember=True)
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("remember_token="))
    assert "Max-Age" not in cookie or "Max-Age=43200" in cookie
    expires = cookie.split("Expires=")[1].split(";")[0]
    from email.utils import parsedate_to_datetime

    left = parsedate_to_datetime(expires).timestamp() - time.time()
    assert 12 * HOUR - 120 < left <= 12 * HOUR


def test_signed_in_pages_and_me_answers_are_not_stored_by_caches(client, make_user, login, token_for):
    user = make_user()
    assert "no-store" not in client.get("/").headers.get("Cache-Control", "")  # public, nobody signed in
    for path in ("/api/v1/me", "/api/v1/me/wallet", "/api/v1/me/claims"):
        assert client.get(path, headers=token_for(user)).headers["Cache-Control"] == "no-store", path
    assert client.get("/api/v1/me").headers["Cache-Control"] == "no-store"  # even the 401
    login(user)
    for path in ("/", "/account", "/me/claims", "/me/wallet"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["Cache-Control"] == "no-store", path
