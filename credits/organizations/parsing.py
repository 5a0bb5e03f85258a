"""Reading a roster file (XLSX or CSV) into raw rows of text: the file's quirks stay here, the rules in services.

XLSX is opened by openpyxl in read-only mode with `data_only=True`: a formula cell gives the value Excel last saved
for it (or nothing), and is never evaluated. Before openpyxl sees the file its zip directory is checked, so that a
zip bomb is refused by its declared sizes instead of being inflated. CSV is UTF-8 (with or without Excel's BOM)
or, failing that, GB 18030, the superset of the GBK that Excel in China saves."""

from __future__ import annotations

import csv
import io
import unicodedata
import zipfile
from dataclasses import dataclass
from datetime import date, datetime

from flask_babel import lazy_gettext as _l

from credits.errors import DomainError, InvalidInput

MAX_ROWS = 5_000
MAX_FILE_BYTES = 2 * 1024 * 1024  # the app's MAX_CONTENT_LENGTH: no request body can be larger
# What the XLSX may inflate to, in all and per member: a 5,000-row roster is about 1 MB inflated; text XML
# compresses 10 to 30 times, so a higher ratio is a file built to inflate.
MAX_UNCOMPRESSED_BYTES = 40 * 1024 * 1024
MAX_RATIO = 100

# Column → the header texts that name it (a header cell naming it starts with one of them: "党员（是/否）").
COLUMNS = {"name": ("姓名", "名字"), "phone": ("手机号", "手机", "联系电话", "电话"),
           "party_member": ("党员", "是否党员"), "note": ("备注",)}
REQUIRED = ("name", "phone", "party_member")
HEADERS = {"name": "姓名", "phone": "手机号", "party_member": "党员", "note": "备注"}
# The template's header row as pages and errors quote it, in any language: the file's headers are these words.
HEADER_LINE = "姓名、手机号、党员（是/否）、备注（可选）"

_XLSX_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the old binary .xls


class RosterRefused(InvalidInput):
    """The file as a whole cannot be read as a roster: nothing is stored."""

    def __init__(self, message) -> None:
        super().__init__(message, fields={"file": [str(message)]})


class RosterTooLarge(DomainError):
    code, status, message = "too_large", 413, _l("文件太大：每次最多导入 5000 行、2 MB，请分成几个文件导入。")

    def __init__(self, message=None) -> None:
        super().__init__(message, fields={"file": [str(message or self.message)]})


@dataclass(frozen=True)
class RawRow:
    row: int  # the row number a person sees in Excel (the header is row 1 when it is the first line)
    name: str
    phone: str
    party_member: str
    note: str


def read_roster(data: bytes) -> list[RawRow]:
    """The file's data rows, blank rows left out. Raises RosterRefused (not XLSX/CSV, unreadable, missing
    columns) and RosterTooLarge (over MAX_FILE_BYTES or MAX_ROWS, or a zip bomb)."""
    if len(data) > MAX_FILE_BYTES:
        raise RosterTooLarge()
    if not data.strip():
        raise RosterRefused(_l("文件是空的。"))
    if data.startswith(_OLE_MAGIC):
        raise RosterRefused(_l("这是旧版 Excel（.xls）文件，请在 Excel 中“另存为” .xlsx 或 CSV 后再上传。"))
    lines = _xlsx_lines(data) if data.startswith(_XLSX_MAGIC) else _csv_lines(data)
    return _rows(lines)


def _xlsx_lines(data: bytes):
    from openpyxl import load_workbook

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            names = {member.filename for member in members}
    except zipfile.BadZipFile as exc:
        raise RosterRefused(_l("无法读取这个 XLSX 文件：文件已损坏。")) from exc
    if "xl/workbook.xml" not in names:
        raise RosterRefused(_l("文件不是 XLSX 或 CSV 表格。请用模板填写后上传。"))
    total = sum(member.file_size for member in members)
    if total > MAX_UNCOMPRESSED_BYTES or any(
            member.file_size > MAX_RATIO * max(member.compress_size, 1) and member.file_size > 1024 * 1024
            for member in members):
        raise RosterTooLarge(_l("这个 XLSX 文件解压后异常巨大，已拒绝读取。请用模板重新填写。"))
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001  (openpyxl raises KeyError, ValueError, XML errors … on bad files)
        raise RosterRefused(_l("无法读取这个 XLSX 文件：文件已损坏。")) from exc
    try:
        sheet = workbook.worksheets[0]
        for values in sheet.iter_rows(values_only=True, max_col=20):
            yield [_text(value) for value in values]
    except Exception as exc:  # noqa: BLE001  (a damaged sheet part)
        raise RosterRefused(_l("无法读取这个 XLSX 文件：文件已损坏。")) from exc
    finally:
        workbook.close()


def _csv_lines(data: bytes):
    if b"\x00" in data[:4096]:
        raise RosterRefused(_l("文件不是 XLSX 或 CSV 表格。请用模板填写后上传。"))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError as exc:
            raise RosterRefused(_l("无法识别文件的文字编码，请保存为 UTF-8 或 GBK 编码的 CSV。")) from exc
    first = text.split("\n", 1)[0]
    delimiter = max(",\t;，", key=first.count)
    try:
        for values in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            yield [value.strip() for value in values]
    except csv.Error as exc:
        raise RosterRefused(_l("无法读取这个 CSV 文件：格式有误。")) from exc


def _text(value) -> str:
    """A cell as the text a person typed: 13912345678 (a number cell) is "13912345678", not "1.39e10"."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip()


def _column_of(header: str) -> str | None:
    header = "".join(unicodedata.normalize("NFKC", header).split())
    for column, names in COLUMNS.items():
        if any(header.startswith(name) for name in names):
            return column
    return None


def _rows(lines) -> list[RawRow]:
    positions: dict[str, int] | None = None
    rows: list[RawRow] = []
    for number, values in enumerate(lines, start=1):
        if not any(values):
            continue
        if positions is None:
            positions = {}
            for index, header in enumerate(values):
                column = _column_of(header)
                if column is not None and column not in positions:
                    positions[column] = index
            missing = [HEADERS[column] for column in REQUIRED if column not in positions]
            if missing:
                raise RosterRefused(_l("缺少列：%(columns)s。第一行须是表头：%(headers)s。",
                                       columns="、".join(missing), headers=HEADER_LINE))
            continue
        if len(rows) >= MAX_ROWS:
            raise RosterTooLarge()
        cells = {column: values[index] if index < len(values) else "" for column, index in positions.items()}
        rows.append(RawRow(number, cells["name"], cells["phone"], cells["party_member"], cells.get("note", "")))
    if positions is None:
        raise RosterRefused(_l("文件是空的。"))
    return rows
