"""Downloads speak as the pages do (issue 21, item 4): labels, not codes, in the reader's language; hours with one
decimal where minutes are stored; rates as percentages — in XLSX as numbers with a number format."""

from __future__ import annotations

import io
from datetime import timedelta

from openpyxl import load_workbook
from sqlalchemy import update

from credits.extensions import db
from credits.projects.models import Project
from credits.timeutil import utcnow
from tests.reports.conftest import this_period
from tests.reports.test_reports import read_csv

CODES = {"published", "closed", "approved", "pending", "manual", "checkin", "government", "enterprise",
         "car_wash", "ended"}


def download(client, headers, name, fmt, **extra):
    response = client.get(f"/api/v1/reports/{name}", headers=headers,
                          query_string={"format": fmt, **this_period(), **extra})
    assert response.status_code == 200
    return response


def as_dicts(rows: list[list]) -> list[dict]:
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def end(project) -> None:
    db.session.execute(update(Project).where(Project.id == project.id).values(ends_at=utcnow() - timedelta(hours=1)))
    db.session.commit()


def test_csv_exports_carry_labels_hours_with_one_decimal_and_percentages(client, token_for, coordinator, town):
    end(town["clean"])
    headers = token_for(coordinator)
    projects = {row["项目"]: row for row in as_dicts(read_csv(download(client, headers, "projects", "csv")))}
    health, clean = projects["健康加油站"], projects["变废为宝"]
    assert health["状态"] == "已发布" and clean["状态"] == "已结束"
    assert health["已核定时长（小时）"] == "4.0" and health["认领率"] == "60.0%"
    assert clean["认领率"] == "25.0%"

    organizations = as_dicts(read_csv(download(client, headers, "organizations", "csv")))
    assert {row["类型"] for row in organizations} <= {"党政机关", "非公企业", "社会组织"}
    records = as_dicts(read_csv(download(client, headers, "records", "csv")))
    assert {row["来源"] for row in records} == {"补录"} and {row["状态"] for row in records} == {"已通过", "待审核"}
    assert sorted(row["时长（小时）"] for row in records) == ["1.0", "1.5", "2.5"]
    merchants = as_dicts(read_csv(download(client, headers, "merchants", "csv")))
    assert all(cell not in CODES for row in projects.values() for cell in row.values())
    assert all(row["类别"] not in CODES for row in merchants)


def test_an_english_reader_gets_english_labels_and_headers(client, token_for, coordinator, town):
    end(town["clean"])
    rows = as_dicts(read_csv(download(client, token_for(coordinator), "projects", "csv", lang="en")))
    clean = next(row for row in rows if "变废为宝" in row.values())
    assert clean["Status"] == "Ended"


def test_xlsx_hours_and_rates_are_numbers_with_number_formats(client, token_for, coordinator, town):
    response = download(client, token_for(coordinator), "projects", "xlsx")
    sheet = load_workbook(io.BytesIO(response.data)).active
    header = [cell.value for cell in sheet[1]]
    health = next(row for row in sheet.iter_rows(min_row=2) if row[1].value == "健康加油站")
    hours, rate = health[header.index("已核定时长（小时）")], health[header.index("认领率")]
    assert (hours.value, hours.number_format) == (4.0, "0.0")
    assert (rate.value, rate.number_format) == (0.6, "0.0%")
    assert health[header.index("状态")].value == "已发布"
