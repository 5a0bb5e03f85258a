"""ledger_days: finished days summed once, and the dashboard's coin figures the same whether it reads them or the
ledger itself."""

from __future__ import annotations

import threading
from datetime import datetime, time, timedelta

import pytest
from sqlalchemy import func, select

from credits.database import in_transaction
from credits.extensions import db
from credits.ledger.models import SystemAccount, TxKind
from credits.ledger.services import system_account, transfer, user_account
from credits.reports.models import LedgerDay, LedgerRollup
from credits.reports.services import Period, roll_up_ledger, summary
from credits.timeutil import local_zone, utcnow
from tests.hours.helpers import ledger_dated, local_day


def post_on(days_ago: int, hour: int, kind: TxKind, coins: int, volunteer) -> None:
    when = datetime.combine(local_day(days_ago), time(hour), local_zone())
    with ledger_dated(when):
        source, target = system_account(SystemAccount.ISSUANCE), user_account(volunteer.id)
        if kind == TxKind.CLAWBACK:
            source, target = target, source
        transfer(kind, source, target, coins, memo="test")
        db.session.commit()


@pytest.fixture
def history(volunteer):
    """Issues and clawbacks over the last 70 days, some late at night, and one today."""
    for days_ago, hour, kind, coins in [(70, 9, TxKind.ISSUE, 5), (40, 23, TxKind.ISSUE, 7), (40, 0, TxKind.ISSUE, 2),
                                        (39, 10, TxKind.CLAWBACK, 1), (3, 12, TxKind.ISSUE, 4),
                                        (1, 23, TxKind.ISSUE, 6), (0, 0, TxKind.ISSUE, 3)]:
        post_on(days_ago, hour, kind, coins, volunteer)


def summed_since(days_ago: int) -> int:
    """How many days the roll-up covers from `days_ago` on: up to yesterday, or the day before in the first
    hour after midnight, while yesterday is still settling."""
    return (db.session.scalar(select(LedgerRollup.through)) - local_day(days_ago)).days + 1


def coin_figures(period: Period) -> dict:
    figures = summary(period)
    return {"coins": figures["coins"], "issued": figures["series"]["coins_issued"]}


PERIODS = [(90, 0), (45, 35), (10, 0), (2, 0)]


@pytest.mark.parametrize("first, last", PERIODS)
def test_the_dashboard_reads_the_same_coins_from_summed_days_as_from_the_ledger(app, history, first, last):
    period = Period(local_day(first), local_day(last))
    from_ledger = coin_figures(period)

    days = in_transaction(lambda: roll_up_ledger(utcnow()))
    from_days = coin_figures(period)

    assert days == summed_since(70) > 0
    assert from_days == from_ledger
    assert from_ledger["coins"]["issued"] > 0


def test_only_finished_days_are_summed_and_a_second_run_adds_nothing(app, history):
    first_run = in_transaction(lambda: roll_up_ledger(utcnow()))
    second_run = in_transaction(lambda: roll_up_ledger(utcnow()))

    through = db.session.scalar(select(LedgerRollup.through))
    assert second_run == 0
    assert through in (local_day(1), local_day(2))  # yesterday, once it has settled
    assert first_run == summed_since(70)
    summed = db.session.scalar(select(func.sum(LedgerDay.amount)).where(LedgerDay.kind == TxKind.ISSUE))
    assert summed == 5 + 7 + 2 + 4 + (6 if through >= local_day(1) else 0)


def test_a_day_is_summed_only_an_hour_after_it_ends(app, volunteer):
    post_on(1, 12, TxKind.ISSUE, 4, volunteer)
    just_after_midnight = datetime.combine(local_day(0), time(0, 30), local_zone())
    an_hour_later = just_after_midnight + timedelta(hours=1)

    early = in_transaction(lambda: roll_up_ledger(just_after_midnight))
    late = in_transaction(lambda: roll_up_ledger(an_hour_later))

    assert early == 0
    assert late == 1
    assert db.session.scalar(select(LedgerRollup.through)) == local_day(1)


def test_racing_roll_ups_sum_each_day_once(app, history):
    in_transaction(lambda: roll_up_ledger(utcnow() - timedelta(days=30)))  # the marker row exists; days remain
    results, errors = [], []

    def run():
        with app.app_context():
            try:
                results.append(in_transaction(lambda: roll_up_ledger(utcnow())))
            except Exception as exc:  # reported below
                errors.append(exc)
            finally:
                db.session.remove()

    db.session.rollback()
    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []  # a day summed twice would have broken ledger_days' primary key
    assert sorted(results)[:-1] == [0, 0, 0] and sorted(results)[-1] > 0


def test_the_rollup_command_reports_the_days_it_summed(runner, history):
    first = runner.invoke(args=["credits", "rollup"])
    second = runner.invoke(args=["credits", "rollup"])

    assert first.exit_code == 0 and "ledger days summed: " in first.output
    assert int(first.output.rsplit(":", 1)[1]) == summed_since(70)
    assert second.output.strip() == "ledger days summed: 0"
