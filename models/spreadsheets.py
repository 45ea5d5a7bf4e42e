"""Spreadsheets for the county: safe against formula injection when opened in Excel."""

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from io import BytesIO, StringIO
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import TYPE_STRING, WriteOnlyCell

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def xlsx_bytes(header: Sequence[str], rows: Iterable[Sequence[object]], title: str) -> bytes:
    """Every text cell is stored as text: openpyxl would otherwise store "=…" as a formula."""
    workbook = Workbook(write_only=False)
    sheet = workbook.active
    assert sheet is not None  # a new workbook has one sheet
    sheet.title = title[:31]
    sheet.append(list(header))
    for row in rows:
        sheet.append(list(row))
        for cell in sheet[sheet.max_row]:
            if isinstance(cell.value, str):
                cell.data_type = TYPE_STRING
    buffer = BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def csv_safe(value: object) -> object:
    """For CSV, where no cell type exists: a leading quote makes Excel show text as text."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


@dataclass(frozen=True)
class Sheet:
    title: str
    header: Sequence[str]
    rows: Sequence[Sequence[str | int | None]]


def neutralised(value: object) -> object:
    """A text a spreadsheet would read as a formula (it starts with = + - @, a tab or a carriage
    return; OWASP "CSV injection") gets a leading quote, so it is shown as the text it is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def workbook_bytes(sheets: Sequence[Sheet]) -> bytes:
    """An XLSX file of several sheets. Texts are neutralised and stored as text (openpyxl
    stores a string starting with "=" as a formula otherwise)."""
    workbook = Workbook(write_only=True)
    used: set[str] = set()
    for sheet in sheets:
        worksheet = workbook.create_sheet(_unique_title(sheet.title, used))
        worksheet.append([_text_cell(worksheet, header) for header in sheet.header])
        for row in sheet.rows:
            worksheet.append([_text_cell(worksheet, value) for value in row])
    buffer = BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _text_cell(worksheet: Any, value: object) -> object:
    if not isinstance(value, str):
        return value
    cell = WriteOnlyCell(worksheet, value=neutralised(value))
    cell.data_type = TYPE_STRING
    return cell


def _unique_title(title: str, used: set[str]) -> str:
    # Excel refuses these in sheet names and names longer than 31 characters.
    cleaned = "".join("_" if c in "[]:*?/\\" else c for c in title)[:31] or "Sheet"
    candidate, number = cleaned, 2
    while candidate in used:
        candidate = f"{cleaned[:28]}-{number}"
        number += 1
    used.add(candidate)
    return candidate


def csv_bytes(sheets: Sequence[Sheet]) -> bytes:
    """One CSV file of several tables: each one's title on a line of its own, its header
    and rows, a blank line between tables. UTF-8 with a BOM, so that Excel reads Chinese.
    Texts are neutralised as in XLSX."""
    buffer = StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for index, sheet in enumerate(sheets):
        if index:
            writer.writerow([])
        writer.writerow([neutralised(sheet.title)])
        writer.writerow([neutralised(header) for header in sheet.header])
        for row in sheet.rows:
            writer.writerow(["" if value is None else neutralised(value) for value in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")
