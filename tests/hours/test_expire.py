"""`flask credits expire` for hours and coins: open check-ins older than 12 h lapse, and under the coin_expiry
policy coins issued in year Y expire at the end of Y+1 (Asia/Shanghai), oldest first, never twice."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from credits.extensions import db
from credits.hours import services as hours
from credits.hours.models import ServiceRecord
from credits.ledger.models import Account, SystemAccount, Transaction, TxKind
from credits.ledger.services import find_user_account, system_account, transfer, user_account, wallet_figures
from credits.ledger.verify import verify_ledger
from credits.timeutil import local_zone, utcnow
from tests.hours.helpers import Clock, approve, confirmed_claim, file, ledger_dated, slot, started_project


@pytest.fixture
def claim(coordinator, volunteer):
    return confirmed_claim(started_project(coordinator, block_minutes=60, coins_per_block=1), volunteer)


@pytest.fixture
def expiring(set_policy):
    set_policy(coin_expiry="end_of_next_year")


def year() -> int:
    return utcnow().astimezone(local_zone()).year


def local(y: int, month: int = 6, day: int = 1, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(y, month, day, hour, minute, tzinfo=local_zone())


class Earner:
    """Earns coins for the volunteer on a fresh day of the project each time, dated as `when` in the ledger."""

    def __init__(self, claim, volunteer, reviewer) -> None:
        self.claim, self.volunteer, self.reviewer, self.day = claim, volunteer, reviewer, 1

    def earn(self, coins: int, when: datetime | None = None):
        self.day += 1
        record = file(self.claim, self.volunteer, slot(self.day, coins * 60, hour=8))
        if when is None:
            assert approve(record, self.reviewer) == coins
        else:
            with ledger_dated(when):
                assert approve(record, self.reviewer) == coins
        return record


@pytest.fixture
def earner(claim, volunteer, coordinator):
    return Earner(claim, volunteer, coordinator)


def balance(user) -> int:
    return db.session.scalar(select(Account.balance).where(Account.user_id == user.id))


def spend(user, coins: int, actor) -> None:
    transfer(TxKind.ADJUST, user_account(user.id), system_account(SystemAccount.ISSUANCE), coins, actor=actor,
             memo="测试：已花掉")
    db.session.commit()


def expire(now: datetime | None = None) -> dict[str, int]:
    counts = hours.expire_due(now)
    db.session.commit()
    return counts


def expired_total(user) -> int:
    return wallet_figures(find_user_account(user.id))["expired"]


# --- lapsed check-ins ----------------------------------------------------------------------------------------


def test_expire_lapses_open_check_ins_older_than_twelve_hours(claim, volunteer, make_user, coordinator, runner,
                                                              monkeypatch):
    clock = Clock(utcnow() - timedelta(hours=13))
    monkeypatch.setattr(hours, "utcnow", clock)
    project = claim.project
    old = hours.check_in(claim, clock.code(project), volunteer=volunteer)
    db.session.commit()
    other = make_user("volunteer", name="王小红")
    clock.now = utcnow() - timedelta(hours=1)
    recent = hours.check_in(confirmed_claim(project, other), clock.code(project), volunteer=other)
    db.session.commit()
    monkeypatch.undo()

    result = runner.invoke(args=["credits", "expire"])
    assert result.exit_code == 0, result.output
    assert "lapsed_checkins: 1" in result.output
    assert dict(db.session.execute(select(ServiceRecord.id, ServiceRecord.status)).all()) == {
        old.id: "lapsed", recent.id: "open"}
    again = runner.invoke(args=["credits", "expire"])
    assert "lapsed_checkins: 0" in again.output


def test_a_lapsed_check_in_earns_nothing(claim, volunteer, monkeypatch):
    clock = Clock(utcnow() - timedelta(hours=20))
    monkeypatch.setattr(hours, "utcnow", clock)
    hours.check_in(claim, clock.code(claim.project), volunteer=volunteer)
    db.session.commit()
    assert expire(utcnow())["lapsed_checkins"] == 1
    record = db.session.scalars(select(ServiceRecord)).one()
    assert (record.status, record.minutes) == ("lapsed", None)
    assert find_user_account(volunteer.id) is None or balance(volunteer) == 0


# --- coin expiry -----------------------------------------------------------------------------------------------


def test_no_coins_expire_under_the_default_policy(earner, volunteer):
    earner.earn(5, when=local(year() - 3))
    assert expire() == {"lapsed_checkins": 0, "expired_accounts": 0, "expired_coins": 0}
    assert balance(volunteer) == 5
    assert expire(local(year() + 5))["expired_coins"] == 0


def test_coins_expire_at_the_end_of_the_next_year_oldest_first(expiring, earner, volunteer, coordinator,
                                                               client, token_for):
    n = year()
    earner.earn(5, when=local(n - 2))  # expired at the end of n - 1
    earner.earn(3, when=local(n - 1))  # good until the end of n
    earner.earn(2)  # this year's: good until the end of n + 1
    spend(volunteer, 2, coordinator)  # spending takes the oldest coins first

    counts = expire()
    assert counts == {"lapsed_checkins": 0, "expired_accounts": 1, "expired_coins": 3}
    assert balance(volunteer) == 5
    assert expire() == {"lapsed_checkins": 0, "expired_accounts": 0, "expired_coins": 0}  # nothing twice

    tx = db.session.scalars(select(Transaction).where(Transaction.kind == TxKind.EXPIRE)).one()
    expired_account = system_account(SystemAccount.EXPIRED)
    assert sorted((e.account_id, e.amount) for e in tx.entries) == sorted(
        [(user_account(volunteer.id).id, -3), (expired_account.id, 3)])
    assert str(n - 2) in tx.memo and tx.idempotency_key

    # A year on, last year's coins go; this year's stay.
    assert expire(local(n + 1, 1, 1, 0, 30))["expired_coins"] == 3
    assert balance(volunteer) == 2
    assert expire(local(n + 1, 12, 31, 23, 59))["expired_coins"] == 0
    assert expire(local(n + 2, 1, 1, 0, 1))["expired_coins"] == 2
    assert balance(volunteer) == 0

    figures = wallet_figures(find_user_account(volunteer.id))
    assert (figures["expired"], figures["balance"]) == (8, 0)
    assert client.get("/api/v1/me/wallet", headers=token_for(volunteer)).json["expired"] == 8
    history = client.get("/api/v1/me/transactions", headers=token_for(volunteer)).json["items"]
    assert [t["kind"] for t in history[:3]] == ["expire", "expire", "expire"]
    assert verify_ledger() == []


def test_the_year_is_the_towns_not_utc(expiring, earner, volunteer):
    n = year()
    earner.earn(2, when=local(n - 2, 12, 31, 23, 30))  # 15:30 UTC: still n - 2 either way
    earner.earn(3, when=local(n - 1, 1, 1, 0, 30))  # 16:30 UTC on 31 December n - 2, but n - 1 in town
    assert expire()["expired_coins"] == 2
    assert balance(volunteer) == 3


def test_clawbacks_and_adjustments_count_as_consumed(expiring, earner, volunteer, coordinator):
    n = year()
    earner.earn(4, when=local(n - 3))
    with ledger_dated(local(n - 2)):  # an admin's credit counts as coins of its year
        transfer(TxKind.ADJUST, system_account(SystemAccount.ISSUANCE), user_account(volunteer.id), 2,
                 actor=coordinator, memo="补发")
        db.session.commit()
    recent = earner.earn(3)
    assert hours.revoke(recent, "重复", reviewer=coordinator) == 3
    db.session.commit()
    # 6 old coins, 3 of them consumed by the clawback (oldest first): the other 3 expire.
    assert balance(volunteer) == 6
    assert expire()["expired_coins"] == 3
    assert balance(volunteer) == 3
    assert verify_ledger() == []


def test_only_volunteers_coins_expire_and_never_below_zero(expiring, earner, volunteer, coordinator):
    earner.earn(4, when=local(year() - 2))
    spend(volunteer, 4, coordinator)
    assert expire()["expired_coins"] == 0
    assert balance(volunteer) == 0
    issuance = db.session.scalar(select(Account.balance).where(Account.system_code == "issuance"))
    assert issuance == 0
    assert verify_ledger() == []


def test_many_volunteers_expire_in_one_run(expiring, coordinator, make_user, runner):
    project = started_project(coordinator, title="敬老院陪伴", capacity=5)
    volunteers = [make_user("volunteer") for _ in range(3)]
    for coins, volunteer in enumerate(volunteers, start=1):
        Earner(confirmed_claim(project, volunteer), volunteer, coordinator).earn(coins, when=local(year() - 2))
    result = runner.invoke(args=["credits", "expire"])
    assert result.exit_code == 0, result.output
    assert "expired_accounts: 3" in result.output and "expired_coins: 6" in result.output
    assert [balance(v) for v in volunteers] == [0, 0, 0]
    assert [expired_total(v) for v in volunteers] == [1, 2, 3]
    again = runner.invoke(args=["credits", "expire"])
    assert "expired_coins: 0" in again.output
    verify = runner.invoke(args=["credits", "verify-ledger"])
    assert verify.exit_code == 0 and "ledger ok" in verify.output
