"""Vouchers raced by real threads against the real database (SQLite or PostgreSQL): two tills scanning one voucher,
twenty volunteers for five quota places, one volunteer overspending in parallel, and redemption racing cancel and
expiry. Each racer is one unit of work in its own application context, committed by in_transaction."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from credits.auth.models import User
from credits.extensions import db
from credits.ledger.models import Transaction
from credits.ledger.verify import verify_ledger
from credits.merchants import services as merchants
from credits.merchants.models import Service, ServiceDay, Voucher
from credits.timeutil import local_zone, utcnow
from tests.merchants.helpers import balance_of, escrow, give, make_service, make_shop, make_staff
from tests.races import race

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("retries")]


def taking(service_id: int, volunteer_id: int) -> Callable[[], str]:
    def job() -> str:
        voucher = merchants.take_voucher(db.session.get(Service, service_id),
                                         volunteer=db.session.get(User, volunteer_id))
        return "issued" if voucher.status == "issued" else voucher.status

    return job


def redeeming(voucher_id: int, staff_id: int) -> Callable[[], str]:
    def job() -> str:
        return merchants.redeem(db.session.get(Voucher, voucher_id), staff=db.session.get(User, staff_id)).status

    return job


def cancelling(voucher_id: int, volunteer_id: int) -> Callable[[], str]:
    def job() -> str:
        return merchants.cancel_voucher(db.session.get(Voucher, voucher_id),
                                        volunteer=db.session.get(User, volunteer_id)).status

    return job


def expiring(voucher_id: int, now) -> Callable[[], str]:
    def job() -> str:
        return "expired" if merchants.expire_if_due(db.session.get(Voucher, voucher_id), now) else "not due"

    return job


def kinds_for(voucher_id: int) -> Counter:
    return Counter(db.session.scalars(select(Transaction.kind).where(Transaction.ref_type == "voucher",
                                                                      Transaction.ref_id == voucher_id)))


@pytest.fixture
def shop(coordinator):
    return make_shop(coordinator, "阳光洗车")


def new_voucher(service: Service, volunteer) -> int:
    voucher = merchants.take_voucher(service, volunteer=volunteer)
    db.session.commit()
    return voucher.id


def test_two_tills_redeeming_one_voucher_at_the_same_instant_pay_once(app, shop, coordinator, volunteer):
    tills = [make_staff(shop, coordinator, "一号收银"), make_staff(shop, coordinator, "二号收银")]
    service = make_service(shop, coordinator, price=2)
    give(volunteer, 20)
    rounds = 6
    for _ in range(rounds):
        voucher_id = new_voucher(service, volunteer)
        results, _ = race(app, [redeeming(voucher_id, till.id) for till in tills])
        assert sorted(results) == ["redeemed", "voucher_redeemed"], results
        assert kinds_for(voucher_id) == Counter({"hold": 1, "redeem": 1})
    assert balance_of(merchant_id=shop.id) == 2 * rounds and escrow() == 0
    assert balance_of(user_id=volunteer.id) == 20 - 2 * rounds
    assert verify_ledger() == []


def test_twenty_volunteers_racing_for_five_quota_places_get_exactly_five(app, shop, coordinator, make_user):
    service = make_service(shop, coordinator, price=1, daily_quota=5)
    people = [make_user("volunteer", name=f"志愿者{i}") for i in range(20)]
    for person in people:
        give(person, 3)
    results, _ = race(app, [taking(service.id, person.id) for person in people])
    assert Counter(results) == Counter({"issued": 5, "quota_exhausted": 15}), results
    day = utcnow().astimezone(local_zone()).date()
    assert db.session.get(ServiceDay, (service.id, day)).taken == 5
    assert db.session.scalar(select(func.count()).select_from(Voucher)) == 5
    assert escrow() == 5 and verify_ledger() == []


def test_a_volunteer_firing_five_vouchers_at_once_never_overspends(app, shop, coordinator, make_user):
    service = make_service(shop, coordinator, price=3)
    for round_ in range(3):
        volunteer = make_user("volunteer", name=f"急性子{round_}")
        give(volunteer, 10)
        results, _ = race(app, [taking(service.id, volunteer.id)] * 5)
        issued = results.count("issued")
        assert issued <= 3 and set(results) <= {"issued", "insufficient_balance"}, results
        assert issued == 3  # every racer ran; only the balance stopped them
        assert balance_of(user_id=volunteer.id) == 10 - 3 * issued >= 0
        assert db.session.scalar(select(func.count()).select_from(Voucher)
                                 .where(Voucher.volunteer_id == volunteer.id)) == issued
    assert verify_ledger() == []


def coins_in_one_place(voucher_id: int, results: list) -> str:
    """Where the voucher's coins went — the merchant (redeemed) or back to the volunteer — and only there."""
    voucher = db.session.get(Voucher, voucher_id)
    db.session.refresh(voucher)
    kinds = kinds_for(voucher_id)
    if voucher.status == "redeemed":
        assert kinds == Counter({"hold": 1, "redeem": 1}), (kinds, results)
        return "merchant"
    assert voucher.status in ("cancelled", "expired"), (voucher.status, results)
    assert kinds == Counter({"hold": 1, "release": 1}), (kinds, results)
    return "volunteer"


def test_redeem_racing_cancel_ends_in_exactly_one_place(app, shop, coordinator, volunteer):
    staff = make_staff(shop, coordinator)
    service = make_service(shop, coordinator, price=2)
    give(volunteer, 40)
    outcomes = Counter()
    for _ in range(10):
        voucher_id = new_voucher(service, volunteer)
        results, _ = race(app, [redeeming(voucher_id, staff.id), cancelling(voucher_id, volunteer.id)])
        place = coins_in_one_place(voucher_id, results)
        expected = (["redeemed", "voucher_redeemed"] if place == "merchant"
                    else ["cancelled", "voucher_cancelled"])
        assert sorted(results) == expected, results
        outcomes[place] += 1
    merchant_got = balance_of(merchant_id=shop.id)
    assert merchant_got == 2 * outcomes["merchant"]
    assert balance_of(user_id=volunteer.id) == 40 - merchant_got and escrow() == 0
    assert verify_ledger() == []
    print(f"\n[race] redeem vs cancel: {dict(outcomes)}")


def test_redeem_racing_expiry_ends_in_exactly_one_place(app, shop, coordinator, volunteer):
    staff = make_staff(shop, coordinator)
    service = make_service(shop, coordinator, price=2)
    give(volunteer, 40)
    outcomes = Counter()
    for _ in range(10):
        voucher_id = new_voucher(service, volunteer)
        # Valid for the till for another few seconds, but due for the expiry job, which runs as of a later time.
        voucher = db.session.get(Voucher, voucher_id)
        voucher.expires_at = utcnow() + timedelta(seconds=5)
        db.session.commit()
        results, _ = race(app, [redeeming(voucher_id, staff.id), expiring(voucher_id, utcnow() + timedelta(minutes=1))])
        place = coins_in_one_place(voucher_id, results)
        expected = (["not due", "redeemed"] if place == "merchant" else ["expired", "voucher_expired"])
        assert sorted(results) == expected, results
        outcomes[place] += 1
    merchant_got = balance_of(merchant_id=shop.id)
    assert merchant_got == 2 * outcomes["merchant"]
    assert balance_of(user_id=volunteer.id) == 40 - merchant_got and escrow() == 0
    assert verify_ledger() == []
    print(f"\n[race] redeem vs expiry: {dict(outcomes)}")


def test_redeem_of_a_lapsed_voucher_racing_expiry_always_returns_the_coins(app, shop, coordinator, volunteer):
    staff = make_staff(shop, coordinator)
    service = make_service(shop, coordinator, price=2)
    give(volunteer, 10)
    for _ in range(4):
        voucher_id = new_voucher(service, volunteer)
        voucher = db.session.get(Voucher, voucher_id)
        voucher.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
        results, _ = race(app, [redeeming(voucher_id, staff.id), expiring(voucher_id, None)])
        assert sorted(results) == ["expired", "voucher_expired"], results
        assert coins_in_one_place(voucher_id, results) == "volunteer"
    assert balance_of(merchant_id=shop.id) == 0 and balance_of(user_id=volunteer.id) == 10
    assert verify_ledger() == []


def test_one_idempotency_key_raced_over_different_services_gives_one_voucher_and_conflicts(
        app, shop, coordinator, volunteer):
    """Five takes at once with one key and five services: the first commits a voucher; every other answers
    idempotency_conflict, never the first request's voucher as if it were theirs (2 of 5 got it once)."""
    services = [make_service(shop, coordinator, name=f"服务{n}", price=1) for n in range(5)]
    give(volunteer, 20)
    volunteer_id = volunteer.id  # read here: the racers must not load anything through the test's session

    def taking_with_key(service_id: int) -> Callable[[], object]:
        def job():
            voucher = merchants.take_voucher(db.session.get(Service, service_id),
                                             volunteer=db.session.get(User, volunteer_id), idempotency_key="k-1")
            return ("issued", voucher.service_id)

        return job

    results, _ = race(app, [taking_with_key(service_id) for service_id in [s.id for s in services]])
    issued = [r for r in results if isinstance(r, tuple)]
    assert len(issued) == 1, results
    assert Counter(r for r in results if not isinstance(r, tuple)) == {"idempotency_conflict": 4}, results
    [voucher] = db.session.scalars(select(Voucher)).all()
    assert voucher.service_id == issued[0][1]
    assert balance_of(user_id=volunteer.id) == 19 and escrow() == 1
    assert verify_ledger() == []


def test_one_redemption_key_raced_over_two_codes_redeems_one(app, shop, coordinator, volunteer):
    till = make_staff(shop, coordinator, "一号收银")
    service = make_service(shop, coordinator, price=2)
    give(volunteer, 10)
    vouchers = [new_voucher(service, volunteer) for _ in range(2)]
    till_id = till.id

    def redeeming_with_key(voucher_id: int) -> Callable[[], str]:
        def job() -> str:
            return merchants.redeem(db.session.get(Voucher, voucher_id), staff=db.session.get(User, till_id),
                                    idempotency_key="till-7").status

        return job

    results, _ = race(app, [redeeming_with_key(v) for v in vouchers])
    assert sorted(results) == ["idempotency_conflict", "redeemed"], results
    assert balance_of(merchant_id=shop.id) == 2 and escrow() == 2
    assert verify_ledger() == []
