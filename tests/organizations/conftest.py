"""Roster files built in memory, uploads through the API, and the SMS file the activation links are read from."""

from __future__ import annotations

import csv
import io
import re

import pytest
from openpyxl import Workbook

from credits.notifications.channels import read_file_backend

HEADER = ["姓名", "手机号", "党员", "备注"]


def xlsx(rows, header=HEADER) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    if header:
        sheet.append(header)
    for row in rows:
        sheet.append(list(row))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def csv_bytes(rows, header=HEADER, encoding="utf-8") -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if header:
        writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding)


def roster(n: int, start: int = 13700000000) -> list[tuple]:
    """n good rows: distinct names and phones, every third a party member."""
    return [(f"成员{i:04d}", str(start + i), "是" if i % 3 == 0 else "否", "") for i in range(n)]


@pytest.fixture
def sms(app, tmp_path):
    """SMS into a file of the test's own: sms() → the texts; sms.link(phone) → the newest activation token."""
    path = tmp_path / "sms.jsonl"
    app.config["SMS_BACKEND"] = f"file:{path}"

    class Texts:
        def __call__(self) -> list[dict]:
            return read_file_backend(str(path))

        def token(self, phone: str) -> str:
            sent = [t for t in self() if t["to"] == phone and t["kind"] == "activation"]
            assert sent, f"no activation SMS to {phone}"
            return re.search(r"/activate/([\w-]+)", sent[-1]["text"]).group(1)

    return Texts()


@pytest.fixture
def upload(client, token_for):
    """upload(user, org, data, filename) → the API's response to POST /organizations/{id}/imports."""

    def post(user, org, data: bytes, filename: str = "roster.xlsx"):
        return client.post(f"/api/v1/organizations/{org.id}/imports", headers=token_for(user),
                           data={"file": (io.BytesIO(data), filename)}, content_type="multipart/form-data")

    return post


@pytest.fixture
def confirm(client, token_for):
    def post(user, org, import_id: int):
        return client.post(f"/api/v1/organizations/{org.id}/imports/{import_id}/confirm", headers=token_for(user))

    return post
