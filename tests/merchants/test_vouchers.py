"""Vouchers by the services (SPEC 2.4, 2.5 invariant 4): taking one holds its price in escrow, redeeming pays the
merchant once, cancel and expiry return the coins, quotas count only live vouchers, Idempotency-Key replays the
first answer, settlement moves a period's redemptions to the settled account, and the ledger stays sound."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from credits.database import in_transaction
from credits.errors import DomainError, InsufficientBalance
from credits.extensions import db
from credits.hours.api import local_day_range
from credits.ledger.models import SystemAccount, Transaction
from credits.ledger.services import find_user_account, wallet_figures
from credits.ledger.verify import verify_ledger
from credits.merchants import services as merchants
from credits.merchants.models import ServiceDay, Settlement, Voucher, VoucherStatus
from credits.settings.services import update_policy
from credits.timeutil import local_zone, utcnow
from tests.merchants.helpers import balance_of, escrow, give, make_service, make_shop, make_staff

CROCKFORD_CODE = re.compile(r"^[0-9ABCDEFGHJKMNPQRSTVWXYZ]{12}$")


@pytest.fixture
def shop(coordinator):
    return make_shop(coordinator, "阳光洗车")


@pytest.fixture
def staff(shop, coordinator):
    return make_staff(shop, coordinator, "王店员")


@pytest.fixture
def service(shop, coordinator):
    return make_service(shop, coordinator, name="精洗", price=3)


@pytest.fixture
def funded(volunteer):
    give(volunteer, 10)
    return volunteer


@pytest.fixture
def admin(make_user):
    return make_user("admin", name="管理员")


def attempt(work) -> object:
    """Run `work` as one committed unit; a refusal is rolled back and answered by its code."""
    try:
        return in_transaction(work)
    except DomainError as exc:
        return exc.code


def take(service, volunteer, key: str | None = None) -> Voucher:
    return in_transaction(lambda: merchants.take_voucher(service, volunteer=volunteer, idempotency_key=key))


def redeem(voucher, staff, key: str | None = None) -> Voucher:
    return in_transaction(lambda: merchants.redeem(voucher, staff=staff, idempotency_key=key))


def kinds_for(voucher: Voucher) -> Counter:
    return Counter(db.session.scalars(select(Transaction.kind).where(Transaction.ref_type == "voucher",
                                                                      Transaction.ref_id == voucher.id)))


def make_due(voucher: Voucher, *, ago: timedelta = timedelta(minutes=1)) -> None:
    voucher.expires_at = utcnow() - ago
    db.session.commit()


def vouchers_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Voucher))


def quota_taken(service) -> int | None:
    day = utcnow().astimezone(local_zone()).date()
    row = db.session.get(ServiceDay, (service.id, day))
    db.session.refresh(row) if row else None
    return row.taken if row else None


# --- taking a voucher ------------------------------------------------------------------------------------------


def test_take_moves_the_price_to_escrow_and_issues_a_grouped_code(funded, service):
    voucher = take(service, funded)
    assert voucher.status == VoucherStatus.ISSUED and voucher.coins == 3
    assert (voucher.service_id, voucher.merchant_id, voucher.volunteer_id) == (service.id, service.merchant_id,
                                                                                funded.id)
    assert CROCKFORD_CODE.match(voucher.code), voucher.code
    grouped = merchants.group_code(voucher.code)
    assert re.fullmatch(r"[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}", grouped) and grouped.replace("-", "") == voucher.code
    assert voucher.expires_at - voucher.issued_at == timedelta(days=7)
    assert balance_of(user_id=funded.id) == 7 and escrow() == 3
    assert kinds_for(voucher) == Counter({"hold": 1})
    assert verify_ledger() == []


def test_codes_are_distinct_and_ttl_follows_the_policy(funded, service, admin):
    update_policy({"voucher_ttl_days": 2}, actor=admin)
    db.session.commit()
    vouchers = [take(service, funded) for _ in range(3)]
    assert len({v.code for v in vouchers}) == 3
    assert all(v.expires_at - v.issued_at == timedelta(days=2) for v in vouchers)
    assert len({merchants.new_code() for _ in range(2000)}) == 2000


def test_insufficient_balance_writes_nothing(volunteer, shop, coordinator):
    give(volunteer, 2)
    service = make_service(shop, coordinator, price=3, daily_quota=5)
    assert attempt(lambda: merchants.take_voucher(service, volunteer=volunteer)) == "insufficient_balance"
    assert vouchers_count() == 0
    assert quota_taken(service) in (None, 0)
    assert balance_of(user_id=volunteer.id) == 2 and escrow() == 0
    assert verify_ledger() == []


def test_a_refused_voucher_leaves_nothing_even_for_a_caller_that_commits_afterwards(volunteer, shop, coordinator):
    give(volunteer, 2)
    service = make_service(shop, coordinator, price=3, daily_quota=5)
    with pytest.raises(InsufficientBalance):
        merchants.take_voucher(service, volunteer=volunteer)
    db.session.commit()  # the caller carries on: the savepoint already undid the quota place and the voucher
    assert vouchers_count() == 0
    assert quota_taken(service) in (None, 0)
    assert verify_ledger() == []


@pytest.mark.parametrize("what", ["service", "merchant"])
def test_inactive_service_or_merchant_refuses(funded, service, shop, coordinator, what):
    if what == "service":
        merchants.update_service(service, {"active": False}, actor=coordinator)
    else:
        shop.active = False
    db.session.commit()
    assert attempt(lambda: merchants.take_voucher(service, volunteer=funded)) == "service_inactive"
    assert vouchers_count() == 0 and balance_of(user_id=funded.id) == 10


def test_daily_quota_counts_only_live_vouchers(make_user, shop, coordinator):
    service = make_service(shop, coordinator, price=1, daily_quota=2)
    people = [make_user("volunteer", name=f"志愿者{i}") for i in range(4)]
    for person in people:
        give(person, 5)
    first, second = take(service, people[0]), take(service, people[1])
    assert attempt(lambda: merchants.take_voucher(service, volunteer=people[2])) == "quota_exhausted"
    assert quota_taken(service) == 2 and vouchers_count() == 2
    # A cancel frees a place.
    in_transaction(lambda: merchants.cancel_voucher(first, volunteer=people[0]))
    assert quota_taken(service) == 1
    third = take(service, people[2])
    assert attempt(lambda: merchants.take_voucher(service, volunteer=people[3])) == "quota_exhausted"
    # So does an expiry.
    make_due(second)
    assert in_transaction(lambda: merchants.expire_if_due(second)) is True
    fourth = take(service, people[3])
    assert quota_taken(service) == 2
    assert {v.status for v in (third, fourth)} == {"issued"}
    assert verify_ledger() == []


def test_a_zero_quota_refuses_and_no_quota_means_unlimited(funded, shop, coordinator):
    closed = make_service(shop, coordinator, name="停售", price=1, daily_quota=0)
    assert attempt(lambda: merchants.take_voucher(closed, volunteer=funded)) == "quota_exhausted"
    open_ = make_service(shop, coordinator, name="不限", price=1)
    assert len([take(open_, funded) for _ in range(6)]) == 6
    assert db.session.scalar(select(func.count()).select_from(ServiceDay)
                             .where(ServiceDay.service_id == open_.id)) == 0


def test_same_idempotency_key_returns_the_same_voucher_with_one_hold(funded, service, shop, coordinator):
    first = take(service, funded, key="k-1")
    again = take(service, funded, key="k-1")
    assert again.id == first.id and vouchers_count() == 1
    assert kinds_for(first) == Counter({"hold": 1}) and balance_of(user_id=funded.id) == 7
    other = make_service(shop, coordinator, name="打蜡", price=2)
    assert attempt(lambda: merchants.take_voucher(other, volunteer=funded, idempotency_key="k-1")) \
        == "idempotency_conflict"
    assert take(service, funded, key="k-2").id != first.id
    assert vouchers_count() == 2 and verify_ledger() == []


def test_keys_are_per_volunteer(funded, service, make_user):
    someone = make_user("volunteer", name="赵志愿")
    give(someone, 5)
    assert take(service, funded, key="same").id != take(service, someone, key="same").id


def test_only_volunteers_take_vouchers(service, staff):
    assert attempt(lambda: merchants.take_voucher(service, volunteer=staff)) == "forbidden"


# --- redeeming ------------------------------------------------------------------------------------------------


def test_redeem_pays_the_merchant_once(funded, service, staff, shop):
    voucher = take(service, funded)
    done = redeem(voucher, staff)
    assert done.status == VoucherStatus.REDEEMED and done.redeemed_by_id == staff.id and done.redeemed_at
    assert balance_of(merchant_id=shop.id) == 3 and escrow() == 0 and balance_of(user_id=funded.id) == 7
    assert attempt(lambda: merchants.redeem(voucher, staff=staff)) == "voucher_redeemed"
    assert kinds_for(voucher) == Counter({"hold": 1, "redeem": 1})
    assert verify_ledger() == []


def test_redeem_replay_with_the_same_key_returns_the_first_result(funded, service, staff, shop, coordinator):
    voucher = take(service, funded)
    assert redeem(voucher, staff, key="scan-1").status == "redeemed"
    assert redeem(voucher, staff, key="scan-1").id == voucher.id  # the till retried: same answer
    assert attempt(lambda: merchants.redeem(voucher, staff=staff, idempotency_key="scan-2")) == "voucher_redeemed"
    colleague = make_staff(shop, coordinator, "陈店员")
    assert attempt(lambda: merchants.redeem(voucher, staff=colleague, idempotency_key="scan-1")) \
        == "voucher_redeemed"
    assert kinds_for(voucher) == Counter({"hold": 1, "redeem": 1}) and balance_of(merchant_id=shop.id) == 3


def test_staff_of_another_shop_get_wrong_merchant(funded, service, coordinator):
    other_shop = make_shop(coordinator, "好孩子早教", "early_education")
    stranger = make_staff(other_shop, coordinator, "外店员")
    voucher = take(service, funded)
    assert attempt(lambda: merchants.redeem(voucher, staff=stranger)) == "wrong_merchant"
    db.session.refresh(voucher)
    assert voucher.status == "issued" and escrow() == 3 and balance_of(merchant_id=other_shop.id) == 0


def test_non_staff_cannot_redeem(funded, service, coordinator, make_user):
    voucher = take(service, funded)
    assert attempt(lambda: merchants.redeem(voucher, staff=coordinator)) == "forbidden"
    shopless = make_user("merchant", name="无店员")
    assert attempt(lambda: merchants.redeem(voucher, staff=shopless)) == "forbidden"


def test_typed_codes_ignore_case_hyphens_spaces_and_read_ilo(funded, service):
    voucher = take(service, funded)
    voucher.code = "7K3MQ9XD2H10"
    db.session.commit()
    for typed in ("7K3MQ9XD2H10", "7K3M-Q9XD-2H10", "7k3m-q9xd-2h10", " 7K3M Q9XD 2H10 ", "7K3M-Q9XD-2HIO",
                  "7k3m-q9xd-2hlo", "7K3M-Q9XD-2HLo"):
        assert merchants.find_voucher(typed).id == voucher.id, typed


@pytest.mark.parametrize("typed", ["7K3M—Q9XD—2H10", "7K3M–Q9XD–2H10", "7K3M\u2011Q9XD\u20112H10", "7K3M－Q9XD－2H10",
                                   "7K3M\u2212Q9XD\u22122H10", "７Ｋ３Ｍ　ｑ９ＸＤ　２Ｈ１０",
                                   "7K3M\u00a0Q9XD\u00a02H10", "7K3M ― Q9XD ― 2HIO"])
def test_typed_codes_ignore_every_kind_of_dash_and_full_width_characters(funded, service, typed):
    voucher = take(service, funded)
    voucher.code = "7K3MQ9XD2H10"
    db.session.commit()
    assert merchants.find_voucher(typed).id == voucher.id

@pytest.mark.parametrize("typed", ["7K3M-Q9XD-2H11", "7K3MQ9XD2H1", "7K3MQ9XD2H100", "7K3M-Q9XD-2H1U",
                                   "hello", "", "----", "' OR 1=1 --", "７K3MQ9XD2H1"])
def test_unknown_and_malformed_codes_answer_the_same_not_found(funded, service, typed):
    voucher = take(service, funded)
    voucher.code = "7K3MQ9XD2H10"
    db.session.commit()
    with pytest.raises(DomainError) as caught:
        merchants.find_voucher(typed)
    assert (caught.value.code, caught.value.status) == ("not_found", 404)
    assert str(caught.value.message) == str(merchants.NotFound(what="voucher").message) == "找不到这张兑换券。"


# --- cancel and expiry ----------------------------------------------------------------------------------------


def test_cancel_returns_the_coins(funded, service, staff, make_user):
    voucher = take(service, funded)
    someone = make_user("volunteer", name="赵志愿")
    assert attempt(lambda: merchants.cancel_voucher(voucher, volunteer=someone)) == "not_found"
    cancelled = in_transaction(lambda: merchants.cancel_voucher(voucher, volunteer=funded))
    assert cancelled.status == "cancelled" and cancelled.closed_at
    assert balance_of(user_id=funded.id) == 10 and escrow() == 0
    assert attempt(lambda: merchants.cancel_voucher(voucher, volunteer=funded)) == "voucher_cancelled"
    assert attempt(lambda: merchants.redeem(voucher, staff=staff)) == "voucher_cancelled"
    assert kinds_for(voucher) == Counter({"hold": 1, "release": 1})
    assert verify_ledger() == []


def test_a_redeemed_voucher_cannot_be_cancelled(funded, service, staff):
    voucher = take(service, funded)
    redeem(voucher, staff)
    assert attempt(lambda: merchants.cancel_voucher(voucher, volunteer=funded)) == "voucher_redeemed"
    assert balance_of(user_id=funded.id) == 7


def test_an_expired_voucher_cannot_be_redeemed_and_expiry_returns_the_coins(funded, service, staff):
    voucher = take(service, funded)
    make_due(voucher)
    assert merchants.shown_status(voucher) == "expired"
    assert attempt(lambda: merchants.redeem(voucher, staff=staff)) == "voucher_expired"
    assert in_transaction(lambda: merchants.expire_if_due(voucher)) is True
    assert in_transaction(lambda: merchants.expire_if_due(voucher)) is False
    assert voucher.status == "expired" and balance_of(user_id=funded.id) == 10 and escrow() == 0
    assert attempt(lambda: merchants.redeem(voucher, staff=staff)) == "voucher_expired"
    assert kinds_for(voucher) == Counter({"hold": 1, "release": 1})
    assert verify_ledger() == []


def test_cancelling_a_due_voucher_expires_it(funded, service):
    voucher = take(service, funded)
    make_due(voucher)
    assert in_transaction(lambda: merchants.cancel_voucher(voucher, volunteer=funded)).status == "expired"
    assert balance_of(user_id=funded.id) == 10


def test_a_voucher_not_yet_due_does_not_expire(funded, service):
    voucher = take(service, funded)
    assert in_transaction(lambda: merchants.expire_if_due(voucher)) is False
    assert voucher.status == "issued" and escrow() == 3


def test_expire_command_returns_the_coins_and_a_second_run_changes_nothing(runner, funded, service):
    due, fresh = take(service, funded), take(service, funded)
    make_due(due)
    result = runner.invoke(args=["credits", "expire"])
    assert result.exit_code == 0, result.output
    assert "expired_vouchers: 1" in result.output
    assert (db.session.get(Voucher, due.id).status, db.session.get(Voucher, fresh.id).status) == ("expired", "issued")
    assert balance_of(user_id=funded.id) == 7 and escrow() == 3
    again = runner.invoke(args=["credits", "expire"])
    assert again.exit_code == 0 and "expired_vouchers: 0" in again.output
    assert balance_of(user_id=funded.id) == 7 and kinds_for(due) == Counter({"hold": 1, "release": 1})
    assert verify_ledger() == []


def test_taking_a_voucher_lazily_expires_the_volunteers_due_ones_first(volunteer, service):
    give(volunteer, 3)
    old = take(service, volunteer)
    assert balance_of(user_id=volunteer.id) == 0
    make_due(old)
    new = take(service, volunteer)  # affordable only because the due voucher's coins came back first
    assert db.session.get(Voucher, old.id).status == "expired" and new.status == "issued"
    assert balance_of(user_id=volunteer.id) == 0 and escrow() == 3
    assert verify_ledger() == []


# --- settlement and statements --------------------------------------------------------------------------------


def today_range():
    today = utcnow().astimezone(local_zone()).date()
    return local_day_range(today, today)


def test_settle_moves_unsettled_redemptions_to_settled_with_a_statement(make_user, shop, staff, coordinator,
                                                                        admin):
    wash = make_service(shop, coordinator, name="精洗", price=3)
    wax = make_service(shop, coordinator, name="打蜡", price=5)
    people = [make_user("volunteer", name=f"志愿者{i}") for i in range(3)]
    for person in people:
        give(person, 20)
    for person, service in zip(people, (wash, wash, wax), strict=True):
        redeem(take(service, person), staff)
    take(wash, people[0])  # outstanding: not in the statement
    period = today_range()
    lines = merchants.statement(shop, *period)
    assert [(line.name, line.count, line.coins) for line in lines] == [("精洗", 2, 6), ("打蜡", 1, 5)]
    assert balance_of(merchant_id=shop.id) == 11

    settlement = in_transaction(lambda: merchants.settle(shop, *period, actor=admin))
    assert (settlement.vouchers, settlement.coins) == (3, 11)
    assert [(line["name"], line["count"], line["coins"]) for line in settlement.lines] == [("精洗", 2, 6),
                                                                                           ("打蜡", 1, 5)]
    assert balance_of(merchant_id=shop.id) == 0
    assert balance_of(system_code=SystemAccount.SETTLED.value) == 11
    assert db.session.scalar(select(func.count()).select_from(Voucher)
                             .where(Voucher.settlement_id == settlement.id)) == 3
    assert attempt(lambda: merchants.settle(shop, *period, actor=admin)) == "invalid_state"
    assert db.session.scalar(select(func.count()).select_from(Settlement)) == 1
    assert escrow() == 3 and verify_ledger() == []

    # Redeemed later in the period: a second settlement takes only the new ones.
    redeem(take(wax, people[1]), staff)
    second = in_transaction(lambda: merchants.settle(shop, *period, actor=admin))
    assert (second.vouchers, second.coins) == (1, 5)
    assert balance_of(system_code=SystemAccount.SETTLED.value) == 16 and verify_ledger() == []


def test_only_admins_settle(funded, service, staff, shop, coordinator):
    redeem(take(service, funded), staff)
    assert attempt(lambda: merchants.settle(shop, *today_range(), actor=coordinator)) == "forbidden"
    assert attempt(lambda: merchants.settle(shop, *today_range(), actor=staff)) == "forbidden"
    assert balance_of(merchant_id=shop.id) == 3


def test_an_empty_period_has_nothing_to_settle(shop, admin):
    assert attempt(lambda: merchants.settle(shop, *today_range(), actor=admin)) == "invalid_state"


def test_wallet_figures_follow_holds_redemptions_and_releases(funded, service, staff):
    def figures():
        return wallet_figures(find_user_account(funded.id))

    assert figures() | {"earned": 0} == {"balance": 10, "held": 0, "spent": 0, "expired": 0, "earned": 0, "debt": 0}
    first, second, third = take(service, funded), take(service, funded), take(service, funded)
    assert (figures()["balance"], figures()["held"], figures()["spent"]) == (1, 9, 0)
    redeem(first, staff)
    assert (figures()["balance"], figures()["held"], figures()["spent"]) == (1, 6, 3)
    in_transaction(lambda: merchants.cancel_voucher(second, volunteer=funded))
    make_due(third)
    in_transaction(lambda: merchants.expire_if_due(third))
    assert (figures()["balance"], figures()["held"], figures()["spent"]) == (7, 0, 3)
    assert figures()["expired"] == 0  # an expired voucher returns coins; it expires none
    assert verify_ledger() == []


def test_a_tampered_voucher_breaks_invariant_4(runner, funded, service):
    voucher = take(service, funded)
    assert runner.invoke(args=["credits", "verify-ledger"]).exit_code == 0
    db.session.execute(text("UPDATE vouchers SET status = 'cancelled' WHERE id = :id"), {"id": voucher.id})
    db.session.commit()
    result = runner.invoke(args=["credits", "verify-ledger"])
    assert result.exit_code == 1
    assert "invariant 4 [escrow]" in result.output and "3" in result.output
    assert [b.invariant for b in verify_ledger()] == [4]


# --- masking --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "masked"), [("张小明", "张*明"), ("张三", "张*"), ("欧阳娜娜", "欧*娜"), ("张", "张"),
                                              ("", "")])
def test_names_are_masked(name, masked):
    assert merchants.mask_name(name) == masked


def test_phones_are_masked():
    assert merchants.mask_phone("13812341234") == "138****1234"
