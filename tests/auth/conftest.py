"""Fixtures for the account tests: more browsers, each with its own cookies."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.conftest import csrf_token


@pytest.fixture
def browser(app):
    """Another browser, signed in through the HTML form when given a user: browser(user, remember=True)."""

    def factory(user=None, password: str = "password123", remember: bool = False) -> FlaskClient:
        other = app.test_client()
        if user is not None:
            data = {"phone": user.phone, "password": password, "csrf_token": csrf_token(other)}
            if remember:
                data["remember"] = "on"
            response = other.post("/login", data=data)
            assert response.status_code == 302, response.get_data(as_text=True)[:500]
        return other

    return factory
