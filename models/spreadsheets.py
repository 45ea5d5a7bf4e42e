"""Spreadsheets for the county: safe against formula injection when opened in Excel."""

from collections.abc import Iterable, Sequence
from io import BytesIO

from openpyxl import Workbook
from openpyxl.cell.cell import TYPE_STRING

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
