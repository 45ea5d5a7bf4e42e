"""Rows of a roster file as text cells, whatever it was saved as: CSV (UTF-8, with the
delimiter Excel wrote) or XLSX (its first sheet, within the unpacked size allowed). A file
or row that cannot be read raises ``UnreadableFile`` with its line; an XLSX cell Excel holds
as something other than text comes back as ``NotText`` for ``models.roster_parse`` to
refuse on its line."""

import csv
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, time, timedelta

from openpyxl import load_workbook

# Excel keeps 15 significant digits: a longer number in a cell has already been rounded.
MAX_DIGITS = 15

# What Excel shows, and saves to CSV or keeps in XLSX, for a formula that failed.
EXCEL_ERRORS = frozenset(
    ("#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A", "#SPILL!", "#CALC!")
)


@dataclass(frozen=True)
class RosterSource:
    """A roster file as uploaded; its name's extension (.csv or .xlsx) decides how it is read."""

    name: str
    content: bytes


@dataclass(frozen=True)
class RosterLimits:
    """What one import may hold: rows of all its files together (header lines not
    counted), and the uncompressed size of one XLSX file. None: no limit."""

    max_rows: int | None = None
    max_xlsx_bytes: int | None = None


NO_LIMITS = RosterLimits()


@dataclass(frozen=True)
class LimitExceeded:
    """Which limit of RosterLimits a file broke: ``setting`` is its config key under
    ``[roster]``; ``limit`` and ``found`` count rows, or bytes for ``max_xlsx_mb``
    (``found`` is None when reading stopped at the limit)."""

    file: str
    setting: str
    limit: int
    found: int | None = None


class UnreadableFile(Exception):
    """A file that cannot be read: as a whole (line 0), or from ``line`` on."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.line = line


class TooLarge(UnreadableFile):
    def __init__(self, message: str, exceeded: LimitExceeded) -> None:
        super().__init__(message)
        self.exceeded = exceeded


def read_rows(source: RosterSource, limits: RosterLimits) -> Iterator[tuple[int, list[str]]]:
    """(line, trimmed cells) of every non-blank row."""
    suffix = file_suffix(source)
    if suffix == "csv":
        rows = _csv_rows(source.content)
    elif suffix == "xlsx":
        _check_unpacked_size(source, limits.max_xlsx_bytes)
        rows = _xlsx_rows(source.content)
    else:
        raise UnreadableFile("unsupported file type: send a .csv or .xlsx file")
    return ((line, cells) for line, cells in enumerate(rows, start=1) if any(cells))


def file_suffix(source: RosterSource) -> str:
    return source.name.rsplit(".", 1)[-1].lower() if "." in source.name else ""


def _csv_rows(content: bytes) -> Iterator[list[str]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise UnreadableFile(
            "cannot read the file: it is not UTF-8 text (in Excel, save as “CSV UTF-8”)"
        ) from error
    first_line = text.split("\n", 1)[0]
    # Excel writes semicolons or tabs in some locales.
    delimiter = next((d for d in (",", "\t", ";") if d in first_line), ",")
    # Strict: otherwise a quote that never closes silently takes in the rest of the file.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows = 0
    try:
        for cells in reader:
            rows += 1
            yield [cell.strip() for cell in cells]
    except csv.Error as error:
        message = f"cannot read the row: {error}"
        if str(error) == "unexpected end of data":
            message = 'unterminated quote: a cell opens with " and nothing closes it'
        raise UnreadableFile(message, rows + 1) from error


def _check_unpacked_size(source: RosterSource, limit: int | None) -> None:
    """An XLSX file is a zip archive: refuse one whose members unpack to more than
    ``limit`` bytes before openpyxl opens it. Python's zip reader never yields more than a
    member's declared size, so the declared sizes bound what is read."""
    if limit is None:
        return
    try:
        with zipfile.ZipFile(io.BytesIO(source.content)) as archive:
            unpacked = sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, ValueError, EOFError) as error:
        raise UnreadableFile(
            "cannot read the file as an Excel workbook (it is not a zip archive)"
        ) from error
    if unpacked > limit:
        raise TooLarge(
            f"the workbook unpacks to {megabytes(unpacked)} MB, more than the "
            f"{megabytes(limit)} MB one import takes ([roster] max_xlsx_mb): "
            "split it, or save it as CSV",
            LimitExceeded(source.name, "max_xlsx_mb", limit, unpacked),
        )


def megabytes(size: int) -> str:
    return f"{size / 2**20:.1f}".removesuffix(".0")


def _xlsx_rows(content: bytes) -> Iterator[list[str]]:
    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many kinds on a damaged or foreign file
        raise UnreadableFile(f"cannot read the file as an Excel workbook ({error})") from error
    try:
        sheet = workbook.worksheets[0]
        # Some programs write a wrong sheet size; without it openpyxl reads every row.
        sheet.reset_dimensions()
        for row in sheet.iter_rows(values_only=True):
            yield [_cell_text(value) for value in row]
    finally:
        workbook.close()


class NotText(str):
    """An XLSX cell that Excel holds as something a roster cannot take for text (a date,
    TRUE or FALSE, a fraction, a rounded number); the string says what it holds."""


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, date | time | timedelta):
        # Excel turns a room typed as 1-2 or 3/4 into a date.
        what = "a date" if isinstance(value, date) else "a time"
        return NotText(f"{what} ({str(value).removesuffix(' 00:00:00')})")
    if isinstance(value, bool):
        return NotText(f"{str(value).upper()} (a true/false value)")
    if isinstance(value, int | float):
        # Excel keeps numbers as floats: room 301 and phone 13800138000 may come back as x.0.
        whole = isinstance(value, int) or value.is_integer()
        if whole and abs(value) < 10**MAX_DIGITS:
            return str(int(value))
        if isinstance(value, float):
            return NotText(f"the number {value:G}")
        return NotText(f"a number longer than {MAX_DIGITS} digits")
    return str(value).strip()
