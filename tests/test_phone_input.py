"""One phone normaliser wherever a phone is typed (issue 21, item 3): +86 / 0086 prefixes, spaces, dashes and
full-width digits all reach the same 11 digits — at sign-in, registration, staff creation and the admin search."""

from __future__ import annotations

import string

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError

from credits.extensions import db
from credits.fields import Phone, is_phone, normalize_phone
from tests.conftest import csrf_token

PASSWORD = "gongyi-test-2026"
phones = st.builds(lambda second, rest: "1" + second + rest, st.sampled_from("3456789"),
                   st.text(alphabet=string.digits, min_size=9, max_size=9))
separators = st.sampled_from(["", " ", "  ", "-", "‑", "—", ".", "\u3000", "\u00a0"])
prefixes = st.sampled_from(["", "+86", "+86 ", "0086", "0086-", "86", "＋８６ ", "(+86)", "（+86）"])


def full_width(text: str) -> str:
    return "".join(chr(ord(ch) + 0xFEE0) if ch in string.digits else ch for ch in text)


@st.composite
def typed(draw) -> tuple[str, str]:
    """A phone, and the way somebody typed it: a prefix, separators anywhere between digits, some digits
    full-width."""
    phone = draw(phones)
    parts = [draw(separators) + (full_width(d) if draw(st.booleans()) else d) for d in phone]
    return phone, draw(prefixes) + "".join(parts) + draw(separators)


@given(typed())
def test_every_way_of_typing_a_phone_normalises_to_its_11_digits(case):
    phone, text = case
    assert normalize_phone(text) == phone


@example("A´")  # NFKC's space before a combining accent, once found by hypothesis
@given(st.text(max_size=30))
def test_normalising_is_idempotent_and_never_invents_a_phone_from_too_few_digits(text):
    once = normalize_phone(text)
    assert normalize_phone(once) == once
    if is_phone(once):
        assert sum(ch.isdigit() for ch in text) >= 11


class PhoneIn(Schema):
    phone = Phone(required=True)


@pytest.mark.parametrize("text", ["1391234567", "23912345678", "+1 139 1234 5678", "139 1234 56789", "电话"])
def test_what_is_not_a_mainland_mobile_is_still_refused(text):
    with pytest.raises(ValidationError) as info:
        PhoneIn().load({"phone": text})
    assert "11 位" in str(info.value.messages)


def test_registration_and_sign_in_accept_the_formats_people_type(client):
    response = client.post("/api/v1/auth/register",
                           json={"phone": "+86 139-1234-5678", "password": "correct horse", "name": "王小明"})
    assert response.status_code == 201 and response.json["phone"] == "13912345678"
    for typed_phone in ("139 1234 5678", "0086 13912345678", "１３９１２３４５６７８"):
        response = client.post("/api/v1/auth/token", json={"phone": typed_phone, "password": "correct horse"})
        assert response.status_code == 201, typed_phone
    page = client.post("/login", data={"phone": "+86 139 1234 5678", "password": "correct horse",
                                       "csrf_token": csrf_token(client)})
    assert page.status_code == 302


def test_staff_creation_and_the_admin_search_normalise_the_phone(client, login, make_user, make_merchant, token_for):
    coordinator = make_user("coordinator")
    merchant = make_merchant()
    response = client.post(f"/api/v1/merchants/{merchant.id}/staff", headers=token_for(coordinator),
                           json={"phone": "137-0000-1234", "name": "洗车店员", "password": "wash-cars-2026"})
    assert response.status_code == 201, response.json
    db.session.expire_all()
    admin = make_user("admin")
    login(admin)
    page = client.get("/admin/users", query_string={"q": "137 0000 1234"}).get_data(as_text=True)
    assert "洗车店员" in page
