"""The HTML pages for merchants: browsing and vouchers, the shop's redeem screen, day list, statement and services,
the coordinator's onboarding and the admin's settlement."""

from __future__ import annotations

import csv
import io
import itertools
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from credits.auth.models import User
from credits.extensions import db
from credits.ledger.models import SystemAccount, TxKind
from credits.ledger.services import system_account, transfer, user_account
from credits.merchants import services as merchants
from credits.merchants.models import Merchant, Settlement, Voucher, VoucherStatus
from credits.timeutil import local_zone, utcnow
from tests.conftest import csrf_token

_phones = itertools.count(13700000000)


@pytest.fixture
def admin(make_user):
    return make_user("admin", name="管理员")


@pytest.fixture
def shop(coordinator):
    merchant = merchants.create_merchant({"name": "奉城老街洗车行", "address": "奉城老街 18 号",
                                          "category": "car_wash", "description": ""}, actor=coordinator)
    db.session.commit()
    return merchant


@pytest.fixture
def service(shop, coordinator):
    made = merchants.create_service(shop, {"name": "洗车", "description": "", "price": 20, "daily_quota": None},
                                    actor=coordinator)
    db.session.commit()
    return made


def staff_of(merchant, coordinator, name="陈店员"):
    user = merchants.add_staff(merchant, {"phone": str(next(_phones)), "name": name, "password": "gongyi-test-2026"},
                               actor=coordinator)
    db.session.commit()
    return user


@pytest.fixture
def staff(shop, coordinator):
    return staff_of(shop, coordinator)


@pytest.fixture
def rich_volunteer(volunteer):
    transfer(TxKind.ADJUST, system_account(SystemAccount.ISSUANCE), user_account(volunteer.id), 100, memo="test")
    db.session.commit()
    return volunteer


def take(volunteer, service) -> Voucher:
    voucher = merchants.take_voucher(service, volunteer=volunteer)
    db.session.commit()
    return voucher


def post(client, path, data=None, page=None):
    return client.post(path, data={**(data or {}), "csrf_token": csrf_token(client, page or path)})


# --- who sees what ---------------------------------------------------------------------------------------------


def test_browse_page_is_public_and_volunteer_pages_ask_for_sign_in(client, service):
    assert "洗车" in client.get("/merchants").get_data(as_text=True)
    for path in ("/me/vouchers", "/shop/redeem", "/shop", "/coordinate/merchants", "/admin/merchants/1/settle"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"], path


def test_each_role_reaches_its_pages_and_is_refused_the_others(browser, rich_volunteer, staff, coordinator, admin,
                                                               shop, service):
    pages = {rich_volunteer: ["/me/vouchers"], staff: ["/shop/redeem", "/shop", "/shop/services"],
             coordinator: ["/coordinate/merchants", f"/coordinate/merchants/{shop.id}"],
             admin: ["/admin/merchants", f"/admin/merchants/{shop.id}/settle"]}
    everything = [path for paths in pages.values() for path in paths]
    for user, allowed in pages.items():
        client = browser(user)
        for path in everything:
            expected = 200 if path in allowed else 403
            assert client.get(path).status_code == expected, (user.name, path)


def test_a_merchant_user_without_a_shop_is_refused_the_till(browser, make_user):
    assert browser(make_user("merchant", name="无店员")).get("/shop/redeem").status_code == 403


def test_nav_shows_each_role_its_merchant_link(browser, rich_volunteer, staff, coordinator):
    assert 'href="/merchants"' in browser(rich_volunteer).get("/").get_data(as_text=True)
    assert 'href="/shop/redeem"' in browser(staff).get("/").get_data(as_text=True)
    assert 'href="/coordinate/merchants"' in browser(coordinator).get("/").get_data(as_text=True)


# --- volunteers ------------------------------------------------------------------------------------------------


def test_browse_shows_what_the_balance_affords(browser, volunteer, shop, coordinator, service):
    merchants.create_service(shop, {"name": "内饰清洁", "price": 40}, actor=coordinator)
    transfer(TxKind.ADJUST, system_account(SystemAccount.ISSUANCE), user_account(volunteer.id), 30, memo="test")
    db.session.commit()
    html = browser(volunteer).get("/merchants").get_data(as_text=True)
    assert "可用余额" in html and ">30<" in html
    assert html.count('name="idempotency_key"') == 1  # only 洗车 (20) is affordable
    assert "还差 10 枚" in html


def test_volunteer_takes_a_voucher_through_the_form_and_sees_its_qr_and_grouped_code(browser, rich_volunteer,
                                                                                      service):
    client = browser(rich_volunteer)
    html = client.get("/merchants").get_data(as_text=True)
    key = re.search(r'name="idempotency_key" value="([^"]+)"', html).group(1)
    response = post(client, f"/merchants/services/{service.id}/voucher", {"idempotency_key": key}, "/merchants")
    assert response.status_code == 302
    voucher = db.session.scalars(select(Voucher)).one()
    assert response.headers["Location"].endswith(f"/me/vouchers/{voucher.id}")
    page = client.get(f"/me/vouchers/{voucher.id}").get_data(as_text=True)
    assert "<svg" in page and "qr-svg" in page
    assert merchants.group_code(voucher.code) in page
    assert "洗车" in page and "奉城老街洗车行" in page and "有效期至" in page


def test_double_submit_with_the_same_key_gives_one_voucher(browser, rich_volunteer, service):
    client = browser(rich_volunteer)
    first = post(client, f"/merchants/services/{service.id}/voucher", {"idempotency_key": "k-1"}, "/merchants")
    second = post(client, f"/merchants/services/{service.id}/voucher", {"idempotency_key": "k-1"}, "/merchants")
    assert first.headers["Location"] == second.headers["Location"]
    assert db.session.scalar(select(func.count(Voucher.id))) == 1


def test_a_voucher_beyond_the_balance_is_refused_on_the_page(browser, volunteer, service):
    client = browser(volunteer)
    response = post(client, f"/merchants/services/{service.id}/voucher", {"idempotency_key": "k"},
                    "/me/certificates")
    assert response.status_code == 422
    assert "公益币余额不足" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Voucher.id))) == 0


def test_my_vouchers_lists_status_and_cancels_an_issued_one(browser, rich_volunteer, service):
    voucher = take(rich_volunteer, service)
    client = browser(rich_volunteer)
    html = client.get("/me/vouchers").get_data(as_text=True)
    assert "待使用" in html and f"/me/vouchers/{voucher.id}/cancel" in html
    response = post(client, f"/me/vouchers/{voucher.id}/cancel", page="/me/vouchers")
    assert response.status_code == 302
    db.session.refresh(voucher)
    assert voucher.status == VoucherStatus.CANCELLED
    html = client.get("/me/vouchers").get_data(as_text=True)
    assert "已取消" in html and f"/me/vouchers/{voucher.id}/cancel" not in html


def test_only_the_owner_sees_or_cancels_a_voucher(browser, rich_volunteer, make_user, service):
    voucher = take(rich_volunteer, service)
    other = browser(make_user("volunteer", name="王五"))
    assert other.get(f"/me/vouchers/{voucher.id}").status_code == 404
    assert post(other, f"/me/vouchers/{voucher.id}/cancel", page="/me/certificates").status_code == 404
    db.session.refresh(voucher)
    assert voucher.status == VoucherStatus.ISSUED


def test_the_voucher_page_polls_its_status_feed_while_the_voucher_is_unused(browser, rich_volunteer, staff,
                                                                           service):
    voucher = take(rich_volunteer, service)
    client = browser(rich_volunteer)
    page = client.get(f"/me/vouchers/{voucher.id}").get_data(as_text=True)
    assert f'data-voucher-feed="/me/vouchers/{voucher.id}/status"' in page and "js/voucher.js" in page

    feed = client.get(f"/me/vouchers/{voucher.id}/status")
    assert feed.status_code == 200 and feed.headers["Cache-Control"] == "no-store"
    assert feed.json == {"status": "issued", "label": "待使用", "redeemed_at": None}

    merchants.redeem(voucher, staff=staff)
    db.session.commit()
    feed = client.get(f"/me/vouchers/{voucher.id}/status").json
    assert (feed["status"], feed["label"]) == ("redeemed", "已使用")
    assert re.fullmatch(r"\d{4}年\d{1,2}月\d{1,2}日 \d\d:\d\d", feed["redeemed_at"])
    page = client.get(f"/me/vouchers/{voucher.id}").get_data(as_text=True)
    assert "data-voucher-feed" not in page and "qr-svg" not in page  # nothing left to wait for


def test_the_status_feed_says_expired_once_the_time_has_passed(browser, rich_volunteer, service):
    voucher = take(rich_volunteer, service)
    voucher.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    feed = browser(rich_volunteer).get(f"/me/vouchers/{voucher.id}/status").json
    assert (feed["status"], feed["label"], feed["redeemed_at"]) == ("expired", "已过期", None)


def test_only_the_owner_reads_a_vouchers_status_feed(browser, rich_volunteer, make_user, staff, service):
    voucher = take(rich_volunteer, service)
    path = f"/me/vouchers/{voucher.id}/status"
    signed_out = browser().get(path)
    assert signed_out.status_code == 401 and signed_out.json["error"]["code"] == "unauthorized"
    other = browser(make_user("volunteer", name="王五")).get(path)
    assert other.status_code == 404 and other.json["error"]["code"] == "not_found"
    assert browser(rich_volunteer).get(f"/me/vouchers/{voucher.id + 1}/status").status_code == 404
    shop_staff = browser(staff).get(path)
    assert shop_staff.status_code == 403 and shop_staff.json["error"]["code"] == "forbidden"
    assert "status" not in other.json and "status" not in shop_staff.json


# --- merchant staff -------------------------------------------------------------------------------------------


def test_staff_redeem_a_typed_code_in_two_steps_and_see_it_today(browser, rich_volunteer, staff, service):
    voucher = take(rich_volunteer, service)
    client = browser(staff)
    typed = voucher.code.lower()
    step1 = post(client, "/shop/redeem", {"code": typed})
    html = step1.get_data(as_text=True)
    assert step1.status_code == 200
    assert "洗车" in html and "张*明" in html and rich_volunteer.phone[-4:] in html
    assert "张小明" not in html and rich_volunteer.phone not in html
    db.session.refresh(voucher)
    assert voucher.status == VoucherStatus.ISSUED  # looking up changes nothing
    key = re.search(r'name="idempotency_key" value="([^"]+)"', html).group(1)
    data = {"code": voucher.code, "idempotency_key": key, "csrf_token": csrf_token(client, "/shop/redeem")}
    assert client.post("/shop/redeem/confirm", data=data).status_code == 302
    assert client.post("/shop/redeem/confirm", data=data).status_code == 302  # a double tap: the same answer
    db.session.refresh(voucher)
    assert voucher.status == VoucherStatus.REDEEMED
    today = client.get("/shop").get_data(as_text=True)
    assert "共 1 张，20 公益币" in today and "张*明" in today


def test_a_code_typed_with_an_em_dash_is_found_on_the_page(browser, rich_volunteer, staff, service):
    voucher = take(rich_volunteer, service)
    typed = merchants.group_code(voucher.code).replace("-", "—")
    response = post(browser(staff), "/shop/redeem", {"code": typed})
    assert response.status_code == 200
    assert "洗车" in response.get_data(as_text=True)

def test_staff_of_another_shop_see_wrong_merchant_without_the_volunteer(browser, rich_volunteer, coordinator,
                                                                         service):
    voucher = take(rich_volunteer, service)
    other_shop = merchants.create_merchant({"name": "丽人美容美发", "address": "老街 101 号",
                                            "category": "hair_beauty"}, actor=coordinator)
    db.session.commit()
    client = browser(staff_of(other_shop, coordinator, name="别店员"))
    response = post(client, "/shop/redeem", {"code": merchants.group_code(voucher.code)})
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "这张兑换券不是本店的" in html
    assert "张*明" not in html and "张小明" not in html and "洗车" not in html


def test_a_redeemed_code_shows_voucher_redeemed(browser, rich_volunteer, staff, service):
    voucher = take(rich_volunteer, service)
    merchants.redeem(voucher, staff=staff)
    db.session.commit()
    response = post(browser(staff), "/shop/redeem", {"code": voucher.code})
    assert response.status_code == 409
    assert "这张兑换券已经使用过了" in response.get_data(as_text=True)


def test_an_unknown_code_is_not_found_on_the_page(browser, staff):
    response = post(browser(staff), "/shop/redeem", {"code": "0000-0000-0000"})
    assert response.status_code == 404
    assert "没有找到这张兑换券" in response.get_data(as_text=True)


def test_csv_export_has_the_bom_and_the_rows(browser, rich_volunteer, staff, service):
    for _ in range(2):
        merchants.redeem(take(rich_volunteer, service), staff=staff)
    db.session.commit()
    # buffered: the streamed body is read inside the request's own context, as a WSGI server would
    response = browser(staff).get("/shop/statement.csv", buffered=True)
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment;")
    body = response.get_data()
    assert body.startswith("\ufeff".encode())
    lines = body.decode("utf-8-sig").strip().splitlines()
    assert lines[0].startswith("核销时间")
    assert len(lines) == 3 and all(",洗车,20,张*明," in line for line in lines[1:])


def test_csv_export_keeps_a_formula_in_a_service_name_as_text(browser, rich_volunteer, staff, shop, coordinator):
    formula = merchants.create_service(shop, {"name": '=HYPERLINK("http://x","y")', "description": "", "price": 20,
                                              "daily_quota": None}, actor=coordinator)
    db.session.commit()
    merchants.redeem(take(rich_volunteer, formula), staff=staff)
    db.session.commit()
    body = browser(staff).get("/shop/statement.csv", buffered=True).get_data().decode("utf-8-sig")
    header, row = csv.reader(io.StringIO(body))
    assert header[1] == "服务" and row[1] == '\'=HYPERLINK("http://x","y")'


def test_staff_add_and_edit_their_services(browser, staff, shop, service):
    client = browser(staff)
    response = post(client, "/shop/services", {"name": "内饰清洁", "price": "40", "daily_quota": ""})
    assert response.status_code == 302
    assert [s.name for s in db.session.get(Merchant, shop.id).services] == ["洗车", "内饰清洁"]
    response = post(client, f"/shop/services/{service.id}", {"price": "25", "daily_quota": "3"}, "/shop/services")
    assert response.status_code == 302
    db.session.refresh(service)
    assert (service.price, service.daily_quota, service.active) == (25, 3, False)
    bad = post(client, f"/shop/services/{service.id}", {"price": "0", "active": "on"}, "/shop/services")
    assert bad.status_code == 422
    db.session.refresh(service)
    assert service.price == 25


# --- coordinators and admins ----------------------------------------------------------------------------------


def test_coordinator_onboards_a_merchant_and_its_staff(browser, coordinator):
    client = browser(coordinator)
    response = post(client, "/coordinate/merchants", {"name": "小太阳早教中心", "address": "老街 56 号",
                                                      "category": "early_education", "description": "亲子早教"})
    assert response.status_code == 302
    merchant = db.session.scalars(select(Merchant)).one()
    page = f"/coordinate/merchants/{merchant.id}"
    response = post(client, f"{page}/staff", {"name": "周店员", "phone": "13700009999", "password": "gongyi-test-2026"},
                    page)
    assert response.status_code == 302
    user = db.session.scalars(select(User).where(User.phone == "13700009999")).one()
    assert user.merchant_id == merchant.id and user.has_role("merchant")
    assert post(client, f"{page}/services", {"name": "早教体验课", "price": "50", "daily_quota": "5"},
                page).status_code == 302
    html = client.get(page).get_data(as_text=True)
    assert "周店员" in html and "早教体验课" in html
    # The service's name and the staff member's name are two fields: each label names its own.
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert 'for="f-name"' in html and 'for="f-staff-name"' in html and 'id="f-staff-name"' in html
    duplicate = post(client, "/coordinate/merchants", {"name": "小太阳早教中心", "address": "x",
                                                       "category": "early_education"})
    assert duplicate.status_code == 422 and "已有同名商户" in duplicate.get_data(as_text=True)


def test_admin_settles_a_period_and_sees_the_statement(browser, admin, rich_volunteer, staff, shop, service):
    merchants.redeem(take(rich_volunteer, service), staff=staff)
    db.session.commit()
    client = browser(admin)
    page = f"/admin/merchants/{shop.id}/settle"
    today = db.session.scalar(select(Voucher.day))
    response = post(client, page, {"from": today.isoformat(), "to": today.isoformat()})
    assert response.status_code == 302
    settlement = db.session.scalars(select(Settlement)).one()
    assert (settlement.vouchers, settlement.coins) == (1, 20)
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"结算单 #{settlement.id}" in html and "洗车" in html and "历次结算" in html
    again = post(client, page, {"from": today.isoformat(), "to": today.isoformat()})
    assert again.status_code == 422 and "没有待结算的兑换" in again.get_data(as_text=True)


def test_the_settle_page_names_the_field_when_from_is_after_to(browser, admin, shop):
    today = utcnow().astimezone(local_zone()).date()
    response = post(browser(admin), f"/admin/merchants/{shop.id}/settle",
                    {"from": today.isoformat(), "to": (today - timedelta(days=1)).isoformat()})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert re.search(r'id="f-to"[^>]*aria-invalid="true"', html)
    assert '<small class="error">结束日期不能早于开始日期。</small>' in html
    assert db.session.scalar(select(func.count()).select_from(Settlement)) == 0


# --- demo data --------------------------------------------------------------------------------------------------


def test_demo_seed_makes_vouchers_in_every_state_and_a_clean_ledger(runner):
    assert runner.invoke(args=["credits", "seed-demo"]).exit_code == 0
    states = set(db.session.scalars(select(Voucher.status).distinct()))
    assert states == {s.value for s in VoucherStatus}
    staff = db.session.scalars(select(User).where(User.phone == "13900000005")).one()
    assert staff.merchant_id is not None
    names = {s for m in db.session.scalars(select(Merchant)).unique() for s in (x.name for x in m.services)}
    assert {"洗车", "早教体验课", "儿童摄影", "美容美发"} <= names
    result = runner.invoke(args=["credits", "verify-ledger"])
    assert result.exit_code == 0, result.output
