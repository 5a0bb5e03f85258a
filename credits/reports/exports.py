"""CSV and XLSX downloads that stream: memory stays flat whatever the number of rows.

Cells are plain values, or Hours and Percent for figures people read in a unit: in CSV they are written as the
pages show them (2.5, 66.7%), in XLSX as numbers with a number format, so Excel still sums and sorts them."""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from flask import Response, stream_with_context
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from credits.timeutil import hours_number, local_zone

FORMATS = ("csv", "xlsx")
MIMETYPES = {"csv": "text/csv; charset=utf-8",
             "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
CHUNK = 64 * 1024
# A cell starting with one of these is a formula to Excel: a volunteer named "=HYPERLINK(…)" must stay text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Hours:
    """Minutes, exported as hours with one decimal (2.0, 2.5), rounded as every page rounds (timeutil.hours_number)."""

    minutes: int


@dataclass(frozen=True)
class Percent:
    """A rate from 0 to 1, exported as a percentage to one decimal."""

    rate: float


def _text(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _csv_cell(value):
    if isinstance(value, Hours):
        return f"{float(hours_number(value.minutes)):.1f}"
    if isinstance(value, Percent):
        return f"{value.rate * 100:.1f}%"
    if isinstance(value, datetime):
        return value.astimezone(local_zone()).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, str):
        return _text(value)
    return "" if value is None else value


def _xlsx_cell(sheet, value):
    if isinstance(value, Hours | Percent):
        number, shape = ((float(hours_number(value.minutes)), "0.0") if isinstance(value, Hours)
                         else (value.rate, "0.0%"))
        cell = WriteOnlyCell(sheet, value=number)
        cell.number_format = shape
        return cell
    # Real dates (numbers to Excel) rather than text: sortable, and no per-row entry in the shared-string table.
    if isinstance(value, datetime):
        return value.astimezone(local_zone()).replace(tzinfo=None, microsecond=0)
    if isinstance(value, str):
        # Input refuses control characters now, but a name stored before then would make the workbook fail.
        return _text(ILLEGAL_CHARACTERS_RE.sub("", value))
    return value


Rows = Callable[[], Iterable[Sequence]]


def _csv_chunks(headers: Sequence[str], rows: Rows) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")  # the BOM tells Excel the file is UTF-8, so Chinese opens readable
    writer.writerow(headers)
    for row in rows():
        writer.writerow([_csv_cell(v) for v in row])
        if buffer.tell() >= CHUNK:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def _xlsx_file(title: str, headers: Sequence[str], rows: Rows):
    """A zip cannot be sent before it is finished: write-only mode spools the sheet to disk row by row, and
    the finished workbook goes to a temporary file that is then sent in chunks."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title[:31])
    sheet.append(list(headers))
    for row in rows():
        sheet.append([_xlsx_cell(sheet, v) for v in row])
    spool = tempfile.TemporaryFile()  # noqa: SIM115 (closed by _file_chunks once sent)
    workbook.save(spool)
    spool.seek(0)
    return spool


def _file_chunks(spool) -> Iterator[bytes]:
    with spool:
        while chunk := spool.read(CHUNK):
            yield chunk


def export_response(filename: str, headers: Sequence[str], rows: Rows, fmt: str) -> Response:
    """A download of the rows `rows()` yields, under `headers`, as `fmt` (csv or xlsx); `filename` has no
    extension. `rows` is called only once the body is being sent: the request's own session and its
    transaction are gone by then (on PostgreSQL a server-side cursor would be closed), so the query runs there."""
    if fmt == "csv":
        body = stream_with_context(_csv_chunks(headers, rows))
    elif fmt == "xlsx":
        body = _file_chunks(_xlsx_file(filename, headers, rows))
    else:
        raise ValueError(fmt)
    name = f"{filename}.{fmt}"
    disposition = f"attachment; filename=\"{name.encode('ascii', 'replace').decode()}\"; filename*=UTF-8''{quote(name)}"
    return Response(body, mimetype=MIMETYPES[fmt], headers={"Content-Disposition": disposition})


def csv_response(filename: str, headers: Sequence[str], rows: Rows) -> Response:
    """`export_response` as CSV: for downloads that come only as CSV (the shop's statement)."""
    return export_response(filename, headers, rows, "csv")
