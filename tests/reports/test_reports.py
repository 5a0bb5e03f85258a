"""The dashboard's figures, the tables and their exports, checked against a small town built through the services:
every expected figure comes from what the services returned or from the balances, not from constants."""

from __future__ import annotations

import csv
import io
from datetime import datetime, time

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from credits.extensions import db
from credits.ledger.models import Account, AccountKind, SystemAccount, TxKind
from credits.ledger.services import system_account, transfer, user_account
from credits.timeutil import local_zone
from tests.hours.helpers import ledger_dated, local_day
from tests.merchants.helpers import escrow, give
from tests.reports.conftest import this_period


def outstanding_now() -> int:
    """What volunteers hold today, straight from the cached balances."""
    return db.session.scalar(select(func.sum(Account.balance)).where(Account.kind == AccountKind.VOLUNTEER)) \
        + escrow()


def get(client, headers, path, **params):
    response = client.get(path, headers=headers, query_string=params)
    return response


def test_summary_counts_what_happened_in_the_period(client, token_for, coordinator, town):
    response = get(client, token_for(coordinator), "/api/v1/reports/summary", **this_period())

    assert response.status_code == 200
    body = response.get_json()
    assert body["hours"] == {"approved_minutes": sum(town["minutes"]), "approved_records": 2, "pending_records": 1}
    assert body["volunteers"]["active"] == 2
    assert body["projects"]["published"] == 2
    # A no-show still took a place: fill rate measures places claimed, attendance shows in no-shows.
    assert body["projects"]["capacity"] == 9 and body["projects"]["confirmed"] == 4
    assert body["projects"]["fill_rate"] == round(4 / 9, 4)
    assert body["coins"]["issued"] == sum(town["coins"])
    assert body["coins"]["adjusted"] == 5
    assert body["coins"]["redeemed"] == town["price"]
    assert body["coins"]["outstanding"] == outstanding_now()
    assert body["merchants"] == [{"merchant_id": town["shop"].id, "name": "奉城老街洗车行", "vouchers": 1,
                                  "coins": town["price"]}]
    series = body["series"]
    assert series["unit"] == "month" and len(series["labels"]) >= 2
    assert sum(series["approved_minutes"]) == sum(town["minutes"])
    assert sum(series["coins_issued"]) == sum(town["coins"])
    assert sum(series["coins_redeemed"]) == town["price"]
    assert series["labels"][series["approved_minutes"].index(sum(town["minutes"]))] == local_day(3).strftime("%Y-%m")


def test_a_short_period_charts_by_day(client, token_for, coordinator, town):
    body = get(client, token_for(coordinator), "/api/v1/reports/summary",
               **{"from": local_day(6).isoformat(), "to": local_day(0).isoformat()}).get_json()

    assert body["series"]["unit"] == "day"
    assert body["series"]["labels"] == [local_day(d).isoformat() for d in range(6, -1, -1)]
    assert body["series"]["approved_minutes"][3] == sum(town["minutes"])  # both slots were 3 days ago


def test_outstanding_at_a_past_end_leaves_out_what_moved_after_it(client, token_for, coordinator, volunteer):
    twenty_days_ago = datetime.combine(local_day(20), time(10), local_zone())
    with ledger_dated(twenty_days_ago):
        transfer(TxKind.ADJUST, system_account(SystemAccount.ISSUANCE), user_account(volunteer.id), 7, memo="t")
        db.session.commit()
    give(volunteer, 4)  # today: after the period below

    body = get(client, token_for(coordinator), "/api/v1/reports/summary",
               **{"from": local_day(30).isoformat(), "to": local_day(10).isoformat()}).get_json()

    assert body["coins"]["outstanding"] == 7
    assert body["coins"]["adjusted"] == 7
    assert outstanding_now() == 11


def test_a_registration_late_on_a_months_last_local_day_counts_in_that_month(client, token_for, coordinator,
                                                                            make_user):
    late = make_user(name="夜猫子")
    late.created_at = datetime(2026, 3, 31, 23, 30, tzinfo=local_zone())  # 15:30 UTC, still March in Shanghai
    db.session.commit()
    headers = token_for(coordinator)

    monthly = get(client, headers, "/api/v1/reports/summary", **{"from": "2026-03-01", "to": "2026-05-31"})
    daily = get(client, headers, "/api/v1/reports/summary", **{"from": "2026-03-31", "to": "2026-04-01"})

    assert monthly.get_json()["series"]["volunteers_registered"] == [1, 0, 0]
    assert daily.get_json()["series"]["volunteers_registered"] == [1, 0]
    assert daily.get_json()["volunteers"]["registered"] == 1


def test_a_month_the_period_only_partly_covers_counts_only_the_periods_days(client, token_for, coordinator,
                                                                            make_user):
    for name, day in (("月初", 10), ("月中", 20)):
        make_user(name=name).created_at = datetime(2026, 3, day, 12, tzinfo=local_zone())
    db.session.commit()

    body = get(client, token_for(coordinator), "/api/v1/reports/summary",
               **{"from": "2026-03-15", "to": "2026-06-10"}).get_json()

    assert body["series"]["labels"] == ["2026-03", "2026-04", "2026-05", "2026-06"]
    assert body["series"]["volunteers_registered"] == [1, 0, 0, 0]
    assert body["volunteers"]["registered"] == 1


@pytest.mark.parametrize("params, field", [
    ({"from": "2026-05-02", "to": "2026-05-01"}, "to"),
    ({"from": "2026-05-01"}, "to"),
    ({"to": "2026-05-01"}, "from"),
    ({"from": "2020-01-01", "to": "2026-01-01"}, "to"),
    ({"from": "2026-13-01", "to": "2026-12-31"}, "from"),
    ({"period": "decade"}, "period"),
    ({"from": "9999-12-31", "to": "9999-12-31"}, "from"),  # the day after overflowed
    ({"from": "0001-01-01", "to": "0001-01-02"}, "from"),
])
def test_bad_periods_are_refused_with_422_naming_the_field(client, token_for, coordinator, params, field):
    for path in ("/api/v1/reports/summary", "/api/v1/reports/projects"):
        response = get(client, token_for(coordinator), path, **params)

        assert response.status_code == 422
        assert field in response.get_json()["error"]["fields"]


@pytest.mark.parametrize("params, field", [({"format": "pdf"}, "format"), ({"sort": "phone"}, "sort"),
                                           ({"order": "sideways"}, "order"), ({"page": 0}, "page")])
def test_bad_table_arguments_are_refused_with_422(client, token_for, coordinator, params, field):
    response = get(client, token_for(coordinator), "/api/v1/reports/volunteers", **params)

    assert response.status_code == 422
    assert field in response.get_json()["error"]["fields"]


def test_a_page_past_the_end_is_empty(client, token_for, coordinator, town):
    body = get(client, token_for(coordinator), "/api/v1/reports/projects", page=50, **this_period()).get_json()

    assert body == {"items": [], "page": 50, "per_page": 20, "total": 2}


def test_projects_table_gives_each_projects_figures(client, token_for, coordinator, town):
    body = get(client, token_for(coordinator), "/api/v1/reports/projects", sort="approved_minutes", order="desc",
               **this_period()).get_json()

    rows = {row["title"]: row for row in body["items"]}
    assert [row["title"] for row in body["items"]] == ["健康加油站", "变废为宝"]
    assert (rows["健康加油站"]["volunteers"], rows["健康加油站"]["approved_minutes"]) == (2, sum(town["minutes"]))
    assert (rows["健康加油站"]["confirmed"], rows["健康加油站"]["capacity"]) == (3, 5)
    assert rows["健康加油站"]["fill_rate"] == pytest.approx(3 / 5)
    assert (rows["变废为宝"]["no_shows"], rows["变废为宝"]["approved_minutes"]) == (1, 0)


def test_organizations_table_counts_only_each_organisations_own_projects(client, token_for, coordinator, town):
    body = get(client, token_for(coordinator), "/api/v1/reports/organizations", **this_period()).get_json()

    rows = {row["id"]: row for row in body["items"]}
    mine, theirs = rows[town["org"].id], rows[town["other_org"].id]
    assert (mine["projects"], mine["approved_minutes"], mine["volunteers"], mine["no_shows"]) == \
        (1, sum(town["minutes"]), 2, 0)
    assert (theirs["projects"], theirs["approved_minutes"], theirs["volunteers"], theirs["no_shows"]) == (1, 0, 0, 1)
    assert (mine["members"], theirs["members"]) == (3, 1)  # volunteers only: 赵协调 is both


def test_merchants_table_counts_vouchers_and_coins(client, token_for, coordinator, town):
    body = get(client, token_for(coordinator), "/api/v1/reports/merchants", **this_period()).get_json()

    assert body["total"] == 1
    row = body["items"][0]
    assert (row["name"], row["services"], row["vouchers_issued"], row["vouchers_redeemed"]) == \
        ("奉城老街洗车行", 1, 2, 1)
    assert (row["coins_redeemed"], row["vouchers_outstanding"]) == (town["price"], 1)


def test_volunteers_table_sorts_by_minutes_in_the_period(client, token_for, coordinator, town):
    body = get(client, token_for(coordinator), "/api/v1/reports/volunteers", sort="approved_minutes",
               order="desc", **this_period()).get_json()

    first, second = body["items"][:2]
    assert (first["name"], first["approved_minutes"], first["records"], first["projects"]) == \
        ("李志愿", 150, 1, 1)
    assert (second["name"], second["approved_minutes"]) == ("王热心", 90)
    balances = {row["name"]: row["balance"] for row in body["items"]}
    assert balances["李志愿"] == town["coins"][0] - town["price"]


def test_pages_of_a_sorted_table_neither_overlap_nor_skip(client, token_for, coordinator, make_user, town):
    for n in range(7):
        make_user(name=f"新人{n}")
    headers = token_for(coordinator)
    seen = []
    for page in (1, 2, 3, 4):
        body = get(client, headers, "/api/v1/reports/volunteers", sort="approved_minutes", page=page, per_page=3,
                   **this_period()).get_json()
        seen += [row["id"] for row in body["items"]]

    assert len(seen) == len(set(seen)) == body["total"]


def read_csv(response) -> list[list[str]]:
    assert response.data.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))


def test_csv_export_has_every_row_with_chinese_headers_and_local_times(client, token_for, coordinator, town):
    response = get(client, token_for(coordinator), "/api/v1/reports/records", format="csv", **this_period())

    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = read_csv(response)
    assert rows[0][:3] == ["编号", "开始时间", "结束时间"]
    assert len(rows) == 1 + 3
    started = {row[1] for row in rows[1:]}
    assert f"{local_day(3).isoformat()} 09:00" in started and f"{local_day(2).isoformat()} 09:00" in started


def test_csv_export_ignores_pagination(client, token_for, coordinator, make_user, town):
    for n in range(5):
        make_user(name=f"新人{n}")
    response = get(client, token_for(coordinator), "/api/v1/reports/volunteers", format="csv", per_page=2,
                   **this_period())

    rows = read_csv(response)
    assert len(rows) - 1 == 1 + 3 + 5  # 赵协调, the town's three, five newcomers


def test_xlsx_export_opens_with_the_same_rows_as_the_json(client, token_for, coordinator, town):
    headers = token_for(coordinator)
    response = get(client, headers, "/api/v1/reports/projects", format="xlsx", **this_period())
    page = get(client, headers, "/api/v1/reports/projects", **this_period()).get_json()

    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.data), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:2] == ("编号", "项目")
    assert [(r[0], r[1]) for r in rows[1:]] == [(item["id"], item["title"]) for item in page["items"]]
    assert isinstance(rows[1][4], datetime)  # a real date cell, in local time
    assert rows[1][4] == datetime.fromisoformat(page["items"][0]["starts_at"]).replace(tzinfo=None, microsecond=0)


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_name_that_looks_like_a_formula_is_exported_as_text(client, token_for, coordinator, make_user, fmt):
    make_user(name="=HYPERLINK(\"http://x\")")
    response = get(client, token_for(coordinator), "/api/v1/reports/volunteers", format=fmt, **this_period())

    if fmt == "csv":
        names = [row[2] for row in read_csv(response)[1:]]
    else:
        sheet = load_workbook(io.BytesIO(response.data)).active
        names = [row[2] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert "'=HYPERLINK(\"http://x\")" in names


def test_a_control_character_stored_in_a_name_does_not_break_the_xlsx_export(client, token_for, coordinator,
                                                                             make_user):
    """Found by tests/test_fuzz.py: openpyxl refuses C0 controls, which registration accepted until then."""
    make_user(name="张\x0e小明")
    response = get(client, token_for(coordinator), "/api/v1/reports/volunteers", format="xlsx", **this_period())

    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.data)).active
    assert "张小明" in [row[2] for row in sheet.iter_rows(min_row=2, values_only=True)]


def test_reports_are_for_coordinators(client, token_for, volunteer):
    assert get(client, token_for(volunteer), "/api/v1/reports/summary").status_code == 403
    assert client.get("/api/v1/reports/records?format=csv").status_code == 401
