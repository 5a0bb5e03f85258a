"""The merchants API (SPEC 3.2): shapes and status codes of every route, Idempotency-Key on vouchers and
redemptions, masked volunteers for merchant staff, refusals that reveal nothing, validation and the redeem rate
limit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from credits.extensions import db
from credits.ledger.models import SystemAccount
from credits.ledger.verify import verify_ledger
from credits.merchants.models import Merchant, Service, Voucher
from credits.timeutil import local_zone, utcnow
from tests.merchants.helpers import balance_of, escrow, give, make_service, make_shop, make_staff

API = "/api/v1"


@pytest.fixture
def shop(coordinator):
    return make_shop(coordinator, "阳光洗车")


@pytest.fixture
def staff(shop, coordinator):
    return make_staff(shop, coordinator, "王店员")


@pytest.fixture
def service(shop, coordinator):
    return make_service(shop, coordinator, name="精洗", price=3, daily_quota=10)


@pytest.fixture
def funded(volunteer):
    give(volunteer, 10)
    return volunteer


@pytest.fixture
def other_shop_staff(coordinator):
    return make_staff(make_shop(coordinator, "好孩子早教", "early_education"), coordinator, "外店员")


def today() -> str:
    return utcnow().astimezone(local_zone()).date().isoformat()


def error_code(response) -> str:
    return response.json["error"]["code"]


def take(client, headers, service_id: int, key: str | None = None):
    extra = {"Idempotency-Key": key} if key else {}
    return client.post(f"{API}/vouchers", json={"service_id": service_id}, headers={**headers, **extra})


# --- merchants and services -----------------------------------------------------------------------------------


def test_anyone_lists_active_merchants_with_their_active_services(client, shop, coordinator, service):
    make_service(shop, coordinator, name="停售", price=1)
    hidden = db.session.scalars(select(Service).where(Service.name == "停售")).one()
    hidden.active = False
    closed = make_shop(coordinator, "已歇业")
    closed.active = False
    db.session.commit()
    response = client.get(f"{API}/merchants")
    assert response.status_code == 200
    assert (response.json["total"], response.json["page"]) == (1, 1)
    [item] = response.json["items"]
    assert {k: item[k] for k in ("id", "name", "address", "category")} == {
        "id": shop.id, "name": "阳光洗车", "address": "奉城镇南街1号", "category": "car_wash"}
    assert item["services"] == [{"id": service.id, "merchant_id": shop.id, "name": "精洗", "description": "",
                                 "price": 3, "daily_quota": 10, "active": True}]


def test_a_coordinator_onboards_a_merchant_and_its_staff(client, token_for, coordinator):
    headers = token_for(coordinator)
    response = client.post(f"{API}/merchants", headers=headers, json={
        "name": "童趣摄影", "address": "奉城镇北街8号", "category": "children_photography", "description": "儿童写真"})
    assert response.status_code == 201, response.json
    merchant = response.json
    assert {k: merchant[k] for k in ("name", "category", "description", "active")} == {
        "name": "童趣摄影", "category": "children_photography", "description": "儿童写真", "active": True}
    again = client.post(f"{API}/merchants", headers=headers,
                        json={"name": "童趣摄影", "address": "别处", "category": "other"})
    assert (again.status_code, error_code(again)) == (409, "name_taken")

    staff = client.post(f"{API}/merchants/{merchant['id']}/staff", headers=headers,
                        json={"phone": "13911112222", "name": "刘店长", "password": "shop-pass-123"})
    assert staff.status_code == 201, staff.json
    assert staff.json["merchant_id"] == merchant["id"] and staff.json["roles"] == ["merchant"]
    assert "password" not in staff.json and "password_hash" not in staff.json
    taken = client.post(f"{API}/merchants/{merchant['id']}/staff", headers=headers,
                        json={"phone": "13911112222", "name": "重复", "password": "shop-pass-123"})
    assert taken.status_code == 409
    missing = client.post(f"{API}/merchants/99999/staff", headers=headers,
                          json={"phone": "13911113333", "name": "无店", "password": "shop-pass-123"})
    assert (missing.status_code, error_code(missing)) == (404, "not_found")

    # The new staff member signs in and adds a service to their shop.
    token = client.post(f"{API}/auth/token", json={"phone": "13911112222", "password": "shop-pass-123"}).json
    created = client.post(f"{API}/merchants/{merchant['id']}/services",
                          headers={"Authorization": f"Bearer {token['token']}"},
                          json={"name": "全家福", "price": 20, "daily_quota": 3})
    assert created.status_code == 201, created.json
    assert {k: created.json[k] for k in ("merchant_id", "name", "price", "daily_quota", "active")} == {
        "merchant_id": merchant["id"], "name": "全家福", "price": 20, "daily_quota": 3, "active": True}


@pytest.mark.parametrize(("body", "field"), [
    ({"address": "x", "category": "car_wash"}, "name"),
    ({"name": "x", "address": "x", "category": "bakery"}, "category"),
    ({"name": "x", "address": "x", "category": "car_wash", "owner": "me"}, "owner"),
    ({"name": "阳光\x00洗车", "address": "x", "category": "car_wash"}, "name"),  # PostgreSQL cannot store NUL
])
def test_bad_merchant_input_is_422(client, token_for, coordinator, body, field):
    response = client.post(f"{API}/merchants", headers=token_for(coordinator), json=body)
    assert (response.status_code, error_code(response)) == (422, "validation_error")
    assert field in str(response.json["error"]["fields"])
    assert db.session.scalar(select(func.count()).select_from(Merchant)) == 0


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "精洗", "price": 0}, "price"),
    ({"name": "精洗", "price": -5}, "price"),
    ({"name": "精洗", "price": 3, "daily_quota": -1}, "daily_quota"),
    ({"name": "精洗", "price": "three"}, "price"),
    ({"name": "精洗", "price": 2.5}, "price"),
    ({"price": 3}, "name"),
    ({"name": "精洗", "price": 3, "merchant_id": 2}, "merchant_id"),
    ({"name": "精洗", "price": 3, "active": False, "colour": "red"}, "colour"),
])
def test_bad_service_input_is_422_and_changes_nothing(client, token_for, staff, shop, body, field):
    response = client.post(f"{API}/merchants/{shop.id}/services", headers=token_for(staff), json=body)
    assert (response.status_code, error_code(response)) == (422, "validation_error"), response.json
    assert field in response.json["error"]["fields"]
    assert db.session.scalar(select(func.count()).select_from(Service)) == 0


def test_staff_and_coordinators_patch_services(client, token_for, staff, coordinator, service,
                                               other_shop_staff):
    response = client.patch(f"{API}/services/{service.id}", headers=token_for(staff),
                            json={"price": 4, "daily_quota": None, "description": "内外精洗"})
    assert response.status_code == 200, response.json
    assert (response.json["price"], response.json["daily_quota"], response.json["description"]) == (
        4, None, "内外精洗")
    off = client.patch(f"{API}/services/{service.id}", headers=token_for(coordinator), json={"active": False})
    assert (off.status_code, off.json["active"]) == (200, False)
    stranger = client.patch(f"{API}/services/{service.id}", headers=token_for(other_shop_staff), json={"price": 1})
    assert (stranger.status_code, error_code(stranger)) == (403, "forbidden")
    for body in ({"price": 0}, {"price": -1}, {"daily_quota": -3}, {"merchant_id": 9}, {"active": "maybe"}):
        bad = client.patch(f"{API}/services/{service.id}", headers=token_for(staff), json=body)
        assert (bad.status_code, error_code(bad)) == (422, "validation_error"), body
    assert client.patch(f"{API}/services/99999", headers=token_for(staff), json={"price": 2}).status_code == 404
    db.session.refresh(service)
    assert (service.price, service.active, service.merchant_id) == (4, False, staff.merchant_id)


def test_staff_cannot_add_services_to_another_shop(client, token_for, shop, other_shop_staff):
    response = client.post(f"{API}/merchants/{shop.id}/services", headers=token_for(other_shop_staff),
                           json={"name": "蹭单", "price": 1})
    assert (response.status_code, error_code(response)) == (403, "forbidden")


# --- vouchers --------------------------------------------------------------------------------------------------


def test_a_volunteer_takes_lists_and_cancels_vouchers(client, token_for, funded, service, shop):
    headers = token_for(funded)
    response = take(client, headers, service.id)
    assert response.status_code == 201, response.json
    voucher = response.json
    assert set(voucher) >= {"id", "code", "coins", "status", "expires_at", "service", "merchant"}
    assert (voucher["coins"], voucher["status"]) == (3, "issued")
    assert len(voucher["code"]) == 14 and voucher["code"].count("-") == 2
    assert voucher["service"]["id"] == service.id
    assert voucher["merchant"] == {"id": shop.id, "name": "阳光洗车", "address": "奉城镇南街1号"}
    assert "+08:00" in voucher["expires_at"]
    wallet = client.get(f"{API}/me/wallet", headers=headers).json
    assert (wallet["balance"], wallet["held"]) == (7, 3)

    second = take(client, headers, service.id).json
    listed = client.get(f"{API}/me/vouchers", headers=headers).json
    assert listed["total"] == 2 and [v["id"] for v in listed["items"]] == [second["id"], voucher["id"]]

    cancelled = client.post(f"{API}/vouchers/{voucher['id']}/cancel", headers=headers)
    assert (cancelled.status_code, cancelled.json["status"]) == (200, "cancelled")
    again = client.post(f"{API}/vouchers/{voucher['id']}/cancel", headers=headers)
    assert (again.status_code, error_code(again)) == (409, "voucher_cancelled")
    only_cancelled = client.get(f"{API}/me/vouchers?status=cancelled", headers=headers).json
    assert [v["id"] for v in only_cancelled["items"]] == [voucher["id"]]
    assert client.get(f"{API}/me/vouchers?status=lost", headers=headers).status_code == 422
    assert client.get(f"{API}/me/wallet", headers=headers).json["balance"] == 7
    assert verify_ledger() == []


def test_a_voucher_past_its_time_is_listed_as_expired(client, token_for, funded, service):
    headers = token_for(funded)
    voucher_id = take(client, headers, service.id).json["id"]
    voucher = db.session.get(Voucher, voucher_id)
    voucher.expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    [item] = client.get(f"{API}/me/vouchers", headers=headers).json["items"]
    assert item["status"] == "expired"
    cancel = client.post(f"{API}/vouchers/{voucher_id}/cancel", headers=headers)
    assert (cancel.status_code, cancel.json["status"]) == (200, "expired")


def test_another_volunteers_voucher_is_not_found(client, token_for, funded, service, make_user):
    voucher_id = take(client, token_for(funded), service.id).json["id"]
    someone = make_user("volunteer", name="赵志愿")
    response = client.post(f"{API}/vouchers/{voucher_id}/cancel", headers=token_for(someone))
    assert (response.status_code, error_code(response)) == (404, "not_found")
    missing = client.post(f"{API}/vouchers/99999/cancel", headers=token_for(funded))
    assert (missing.status_code, error_code(missing)) == (404, "not_found")


def test_idempotency_key_returns_the_first_voucher(client, token_for, funded, service, shop, coordinator):
    headers = token_for(funded)
    first = take(client, headers, service.id, key="tap-1")
    again = take(client, headers, service.id, key="tap-1")
    assert first.status_code == 201 and again.status_code == 201
    assert again.json == first.json
    assert client.get(f"{API}/me/wallet", headers=headers).json["balance"] == 7
    other = make_service(shop, coordinator, name="打蜡", price=2)
    conflict = take(client, headers, other.id, key="tap-1")
    assert (conflict.status_code, error_code(conflict)) == (409, "idempotency_conflict")
    assert db.session.scalar(select(func.count()).select_from(Voucher)) == 1


@pytest.mark.parametrize(("setup", "code"), [("poor", "insufficient_balance"), ("inactive", "service_inactive"),
                                             ("full", "quota_exhausted")])
def test_voucher_refusals_are_409_and_change_nothing(client, token_for, volunteer, service, setup, code):
    give(volunteer, 2 if setup == "poor" else 10)
    if setup == "inactive":
        service.active = False
    if setup == "full":
        service.daily_quota = 0
    db.session.commit()
    response = take(client, token_for(volunteer), service.id)
    assert (response.status_code, error_code(response)) == (409, code)
    assert db.session.scalar(select(func.count()).select_from(Voucher)) == 0 and escrow() == 0


def test_bad_voucher_input(client, token_for, funded, service):
    headers = token_for(funded)
    assert client.post(f"{API}/vouchers", headers=headers, json={}).status_code == 422
    assert client.post(f"{API}/vouchers", headers=headers, json={"service_id": "x"}).status_code == 422
    assert client.post(f"{API}/vouchers", headers=headers,
                       json={"service_id": service.id, "coins": 1}).status_code == 422
    assert client.post(f"{API}/vouchers", headers=headers, json={"service_id": 99999}).status_code == 404


@pytest.mark.parametrize(("body", "headers"), [
    ({"service_id": -145159242639884203065344}, {}),  # found by tests/test_fuzz.py: overflowed the query
    ({"service_id": 2**31}, {}),
    (None, {"Idempotency-Key": "key\x00"}),  # stored with the ledger transaction: PostgreSQL refuses NUL
    (None, {"Idempotency-Key": "k" * 101}),  # was cut to 100 characters, so two keys could name one request
])
def test_unstorable_voucher_input_is_422_and_changes_nothing(client, token_for, funded, service, body, headers):
    response = client.post(f"{API}/vouchers", headers={**token_for(funded), **headers},
                           json=body or {"service_id": service.id})
    assert (response.status_code, error_code(response)) == (422, "validation_error"), response.json
    assert db.session.scalar(select(func.count()).select_from(Voucher)) == 0 and escrow() == 0


@pytest.mark.parametrize("period", ["from=0001-01-01&to=2026-01-31", "from=2026-01-01&to=9999-12-31"])
def test_periods_past_the_calendar_are_422(client, token_for, staff, shop, make_user, period):
    """The day after 9999-12-31 does not exist: it overflowed instead of being refused."""
    for path in ("redemptions", "statement"):
        response = client.get(f"{API}/merchants/{shop.id}/{path}?{period}", headers=token_for(staff))
        assert (response.status_code, error_code(response)) == (422, "validation_error"), path
    first, last = (part.split("=")[1] for part in period.split("&"))
    response = client.post(f"{API}/merchants/{shop.id}/settlements", headers=token_for(make_user("admin")),
                           json={"from": first, "to": last})
    assert (response.status_code, error_code(response)) == (422, "validation_error")


# --- redemption ------------------------------------------------------------------------------------------------


@pytest.fixture
def voucher(client, token_for, funded, service) -> dict:
    return take(client, token_for(funded), service.id).json


def redeem(client, headers, code: str, key: str | None = None):
    extra = {"Idempotency-Key": key} if key else {}
    return client.post(f"{API}/redemptions", json={"code": code}, headers={**headers, **extra})


def test_staff_redeem_and_see_a_masked_volunteer(client, token_for, staff, voucher, shop, service, funded):
    headers = token_for(staff)
    response = redeem(client, headers, voucher["code"].lower())
    assert response.status_code == 200, response.json
    body = response.json
    assert (body["id"], body["status"], body["coins"]) == (voucher["id"], "redeemed", 3)
    assert body["service"]["id"] == service.id and body["redeemed_at"]
    assert body["volunteer_name"] == "张*明"
    assert body["volunteer_phone"] == f"{funded.phone[:3]}****{funded.phone[-4:]}" != funded.phone
    assert "code" not in body and "volunteer_id" not in body
    assert balance_of(merchant_id=shop.id) == 3 and escrow() == 0

    second = redeem(client, headers, voucher["code"])
    assert (second.status_code, error_code(second)) == (409, "voucher_redeemed")
    assert verify_ledger() == []


def test_redeem_replay_with_the_same_key_returns_the_first_result(client, token_for, staff, voucher, shop):
    headers = token_for(staff)
    first = redeem(client, headers, voucher["code"], key="scan-9")
    again = redeem(client, headers, voucher["code"], key="scan-9")
    assert first.status_code == again.status_code == 200
    assert again.json == first.json
    other_key = redeem(client, headers, voucher["code"], key="scan-10")
    assert (other_key.status_code, error_code(other_key)) == (409, "voucher_redeemed")
    assert balance_of(merchant_id=shop.id) == 3


def test_a_code_typed_with_long_dashes_and_full_width_letters_redeems(client, token_for, staff, voucher):
    code = voucher["code"]  # grouped: 7K3M-Q9XD-2HRT
    typed = " " + code.replace("-", " — ").lower().translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    response = redeem(client, token_for(staff), typed)
    assert response.status_code == 200, response.json
    assert response.json["status"] == "redeemed"

@pytest.mark.parametrize("code", ["0000-0000-0000", "ZZZZ-ZZZZ-ZZZZ", "abc", "UUUU-UUUU-UUUU", "  -  "])
def test_unknown_and_malformed_codes_are_404(client, token_for, staff, voucher, code):
    response = redeem(client, token_for(staff), code)
    assert (response.status_code, error_code(response)) == (404, "not_found")
    assert "volunteer_name" not in str(response.json)
    assert escrow() == 3


def test_bad_redemption_input_is_422(client, token_for, staff):
    headers = token_for(staff)
    for body in ({}, {"code": ""}, {"code": "X" * 41}, {"code": 12}, {"code": "AAAA", "merchant_id": 1}):
        response = client.post(f"{API}/redemptions", json=body, headers=headers)
        assert (response.status_code, error_code(response)) == (422, "validation_error"), body


def test_staff_of_another_shop_get_wrong_merchant_and_no_volunteer_details(client, token_for, voucher,
                                                                           other_shop_staff):
    response = redeem(client, token_for(other_shop_staff), voucher["code"])
    assert (response.status_code, error_code(response)) == (409, "wrong_merchant")
    text = response.get_data(as_text=True)
    for leak in ("volunteer", "张", "138", voucher["code"]):
        assert leak not in text, leak
    assert set(response.json) == {"error"}
    assert db.session.get(Voucher, voucher["id"]).status == "issued"


@pytest.mark.parametrize("status", ["cancelled", "expired"])
def test_closed_vouchers_are_refused(client, token_for, staff, voucher, funded, status):
    if status == "cancelled":
        client.post(f"{API}/vouchers/{voucher['id']}/cancel", headers=token_for(funded))
    else:
        row = db.session.get(Voucher, voucher["id"])
        row.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    response = redeem(client, token_for(staff), voucher["code"])
    assert (response.status_code, error_code(response)) == (409, f"voucher_{status}")
    assert balance_of(merchant_id=staff.merchant_id) == 0


def test_redemptions_are_rate_limited_per_staff_user(client, token_for, app, staff, voucher, shop, coordinator):
    assert app.config["REDEEM_RATE_LIMIT"] == "30 per minute"
    colleague = make_staff(shop, coordinator, "陈店员")
    headers = token_for(staff)
    for _ in range(30):
        assert redeem(client, headers, "0000-0000-0000").status_code == 404
    limited = redeem(client, headers, voucher["code"])
    assert (limited.status_code, error_code(limited)) == (429, "rate_limited")
    assert db.session.get(Voucher, voucher["id"]).status == "issued"
    assert redeem(client, token_for(colleague), voucher["code"]).status_code == 200  # per user, not per shop


# --- redemptions, statements, settlements ----------------------------------------------------------------------


def test_a_settlement_whose_from_is_after_its_to_is_a_validation_error(client, token_for, shop, make_user):
    day = utcnow().astimezone(local_zone()).date()
    response = client.post(f"{API}/merchants/{shop.id}/settlements", headers=token_for(make_user("admin")),
                           json={"from": str(day), "to": str(day - timedelta(days=1))})
    assert (response.status_code, error_code(response)) == (422, "validation_error"), response.json
    assert response.json["error"]["fields"] == {"to": ["结束日期不能早于开始日期。"]}


def test_redemptions_list_statement_and_settlement(client, token_for, staff, coordinator, voucher, shop,
                                                   make_user, other_shop_staff, service):
    redeem(client, token_for(staff), voucher["code"])
    wax = make_service(shop, coordinator, name="打蜡", price=5)
    buyer = make_user("volunteer", name="欧阳娜娜")
    give(buyer, 5)
    code = take(client, token_for(buyer), wax.id).json["code"]
    redeem(client, token_for(staff), code)

    for who in (staff, coordinator):
        listed = client.get(f"{API}/merchants/{shop.id}/redemptions?from={today()}&to={today()}",
                            headers=token_for(who))
        assert listed.status_code == 200, listed.json
        assert listed.json["total"] == 2
        assert {i["volunteer_name"] for i in listed.json["items"]} == {"张*明", "欧*娜"}
    yesterday = (utcnow().astimezone(local_zone()).date() - timedelta(days=1)).isoformat()
    empty = client.get(f"{API}/merchants/{shop.id}/redemptions?from={yesterday}&to={yesterday}",
                       headers=token_for(staff))
    assert empty.json["total"] == 0
    assert client.get(f"{API}/merchants/{shop.id}/redemptions",
                      headers=token_for(staff)).json["total"] == 2
    assert client.get(f"{API}/merchants/{shop.id}/redemptions",
                      headers=token_for(other_shop_staff)).status_code == 403

    period = f"from={today()}&to={today()}"
    statement = client.get(f"{API}/merchants/{shop.id}/statement?{period}", headers=token_for(staff))
    assert statement.status_code == 200
    assert statement.json == [{"service_id": service.id, "name": "精洗", "count": 1, "coins": 3},
                              {"service_id": wax.id, "name": "打蜡", "count": 1, "coins": 5}]
    assert client.get(f"{API}/merchants/{shop.id}/statement", headers=token_for(staff)).status_code == 422
    assert client.get(f"{API}/merchants/{shop.id}/statement?{period}",
                      headers=token_for(other_shop_staff)).status_code == 403

    admin = make_user("admin", name="管理员")
    refused = client.post(f"{API}/merchants/{shop.id}/settlements", headers=token_for(coordinator),
                          json={"from": today(), "to": today()})
    assert refused.status_code == 403
    settled = client.post(f"{API}/merchants/{shop.id}/settlements", headers=token_for(admin),
                          json={"from": today(), "to": today()})
    assert settled.status_code == 201, settled.json
    assert {k: settled.json[k] for k in ("merchant_id", "vouchers", "coins")} == {
        "merchant_id": shop.id, "vouchers": 2, "coins": 8}
    assert [(line["name"], line["count"], line["coins"]) for line in settled.json["lines"]] == [
        ("精洗", 1, 3), ("打蜡", 1, 5)]
    assert balance_of(merchant_id=shop.id) == 0
    assert balance_of(system_code=SystemAccount.SETTLED.value) == 8
    again = client.post(f"{API}/merchants/{shop.id}/settlements", headers=token_for(admin),
                        json={"from": today(), "to": today()})
    assert (again.status_code, error_code(again)) == (409, "invalid_state")
    bad = client.post(f"{API}/merchants/{shop.id}/settlements", headers=token_for(admin), json={"from": "soon"})
    assert bad.status_code == 422
    assert client.post(f"{API}/merchants/99999/settlements", headers=token_for(admin),
                       json={"from": today(), "to": today()}).status_code == 404
    assert verify_ledger() == []


def test_a_redemption_key_reused_for_another_code_is_an_idempotency_conflict(client, token_for, staff, funded,
                                                                              service):
    headers = token_for(staff)
    first, second = (take(client, token_for(funded), service.id).json for _ in range(2))
    assert redeem(client, headers, first["code"], key="till-1").status_code == 200
    assert redeem(client, headers, first["code"], key="till-1").status_code == 200  # the replay
    reused = redeem(client, headers, second["code"], key="till-1")
    assert (reused.status_code, error_code(reused)) == (409, "idempotency_conflict")
    assert db.session.get(Voucher, second["id"]).status == "issued"
