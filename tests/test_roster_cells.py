"""Cells that Excel has typed or mangled, and CSV quotes that never close: each is refused
on its line and nothing is written, while the numbers and quoting that are fine still read."""

import io
import zipfile
from datetime import date, datetime, time

from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.org import Household, Post
from models.roster import RosterSource, import_roster
from tests.test_roster import HOUSEHOLDS_HEADER, PEOPLE_HEADER, csv_file, problems_of, xlsx_file

HOUSEHOLD_ROW = ["社区", "片区", "小区", "1号楼", "1单元"]
AS_TEXT = "not text: format the column as text in Excel and type the cell again"


def households_xlsx(*rooms: object) -> RosterSource:
    header = HOUSEHOLDS_HEADER.strip().split(",")
    return xlsx_file("h.xlsx", [header, *([*HOUSEHOLD_ROW, room] for room in rooms)])


def with_float_text(source: RosterSource, number: str) -> RosterSource:
    """The workbook with ``<v>number</v>`` written ``<v>number.0</v>``, as some programs
    save a whole number; openpyxl reads that back as a float."""
    packed = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(source.content)) as old,
        zipfile.ZipFile(packed, "w") as new,
    ):
        for member in old.infolist():
            data = old.read(member)
            if member.filename == "xl/worksheets/sheet1.xml":
                assert f"<v>{number}</v>".encode() in data
                data = data.replace(f"<v>{number}</v>".encode(), f"<v>{number}.0</v>".encode())
            new.writestr(member, data)
    return RosterSource(source.name, packed.getvalue())


def xlsx_cell_type(source: RosterSource, coordinate: str) -> str:
    sheet = load_workbook(io.BytesIO(source.content)).worksheets[0]
    return str(sheet[coordinate].data_type)


async def test_dates_and_times_excel_made_of_a_cell_are_refused(session: AsyncSession) -> None:
    header = HOUSEHOLDS_HEADER.strip().split(",")
    source = xlsx_file(
        "h.xlsx",
        [
            header,
            [*HOUSEHOLD_ROW, "101"],
            [*HOUSEHOLD_ROW, datetime(2024, 1, 2)],  # typed 1-2
            ["社区", "片区", "小区", date(2024, 3, 4), "1单元", "103"],  # typed 3/4
            [*HOUSEHOLD_ROW, time(10, 30)],  # typed 10:30
            [*HOUSEHOLD_ROW, datetime(2024, 1, 2, 10, 30)],
        ],
    )
    assert await problems_of(session, [source]) == [
        f"h.xlsx:3: a date (2024-01-02) in column room, {AS_TEXT}",
        f"h.xlsx:4: a date (2024-03-04) in column building, {AS_TEXT}",
        f"h.xlsx:5: a time (10:30:00) in column room, {AS_TEXT}",
        f"h.xlsx:6: a date (2024-01-02 10:30:00) in column room, {AS_TEXT}",
    ]


async def test_true_and_false_cells_are_refused(session: AsyncSession) -> None:
    people = xlsx_file(
        "p.xlsx", [PEOPLE_HEADER.strip().split(","), ["片区", "lead", True, "13800138000"]]
    )
    assert await problems_of(session, [households_xlsx(False), people]) == [
        f"h.xlsx:2: FALSE (a true/false value) in column room, {AS_TEXT}",
        f"p.xlsx:2: TRUE (a true/false value) in column name, {AS_TEXT}",
    ]


async def test_excel_error_values_are_refused_in_xlsx_and_csv(session: AsyncSession) -> None:
    people = xlsx_file(
        "p.xlsx", [PEOPLE_HEADER.strip().split(","), ["片区", "lead", "王芳", "#N/A"]]
    )
    households = csv_file("h.csv", HOUSEHOLDS_HEADER + "C,Z,G,#REF!,U,101\nC,Z,G,B,U,#div/0!\n")
    failed = "a formula there failed; fix it, or type the cell's value in Excel"
    assert await problems_of(session, [households, people]) == [
        f"h.csv:2: Excel's error value #REF! in column building: {failed}",
        f"h.csv:3: Excel's error value #div/0! in column room: {failed}",
        f"p.xlsx:2: Excel's error value #N/A in column phone: {failed}",
    ]
    # In the workbook the cell is an error value, not text that reads like one.
    assert xlsx_cell_type(people, "D2") == "e"


async def test_fractions_and_numbers_excel_has_rounded_are_refused(
    session: AsyncSession,
) -> None:
    source = households_xlsx(102.5, 1e20, 10**20, 10**15, 1.5e16)
    people = xlsx_file(
        "p.xlsx", [PEOPLE_HEADER.strip().split(","), ["片区/小区", "lead", "甲", 1.38e10]]
    )
    assert await problems_of(session, [source, people]) == [
        f"h.xlsx:2: the number 102.5 in column room, {AS_TEXT}",
        f"h.xlsx:3: the number 1E+20 in column room, {AS_TEXT}",
        # openpyxl saves an int this large as a float.
        f"h.xlsx:4: the number 1E+20 in column room, {AS_TEXT}",
        f"h.xlsx:5: a number longer than 15 digits in column room, {AS_TEXT}",
        f"h.xlsx:6: the number 1.5E+16 in column room, {AS_TEXT}",
        # 13800000000: a whole number, so read as text and then checked as a phone.
        "p.xlsx:2: no zone, grid, building or unit 片区/小区 in the database or in the "
        "households files",
    ]


async def test_whole_numbers_stay_room_numbers_and_phones(session: AsyncSession) -> None:
    rooms = with_float_text(households_xlsx(102, 999_999_999_999_999, 103), "103")
    people = with_float_text(
        xlsx_file(
            "p.xlsx",
            [
                PEOPLE_HEADER.strip().split(","),
                ["片区/小区/1号楼/1单元", "lead", "甲", 13800138000],
                ["片区/小区/1号楼/1单元", "officer", "乙", 8613900139000],
            ],
        ),
        "8613900139000",
    )
    report = await import_roster(session, [rooms, people])
    assert (report.households, report.people) == (3, 2)
    assert set(await session.scalars(select(Household.room))) == {
        "102",
        "999999999999999",
        "103",
    }
    phones = await session.scalars(select(Post.roster_phone).where(Post.roster_phone.is_not(None)))
    assert set(phones) == {"+8613800138000", "+8613900139000"}


async def test_a_quote_that_never_closes_is_refused_on_its_line(session: AsyncSession) -> None:
    last = csv_file(
        "last.csv", HOUSEHOLDS_HEADER + 'C,Z,G,B,U,101\nC,Z,G,B,,102\nC,Z,G,B,U,"unterminated\n'
    )
    # In the middle, the open quote would take in every row after it.
    middle = csv_file(
        "middle.csv", HOUSEHOLDS_HEADER + 'C,Z,G,B,"U,101\nC,Z,G,B,U,102\nC,Z,G,B,U,103\n'
    )
    header = csv_file("header.csv", '"path,role,name,phone\n')
    after = csv_file("after.csv", PEOPLE_HEADER + 'Z,lead,"甲"乙,13800138000\n')
    unterminated = 'unterminated quote: a cell opens with " and nothing closes it'
    assert await problems_of(session, [last, middle, header, after]) == [
        "last.csv:3: empty cell in column unit",
        f"last.csv:4: {unterminated}",
        f"middle.csv:2: {unterminated}",
        f"header.csv:1: {unterminated}",
        "after.csv:2: cannot read the row: ',' expected after '\"'",
    ]


async def test_strict_quoting_still_reads_what_excel_writes(session: AsyncSession) -> None:
    text = (
        HOUSEHOLDS_HEADER.strip().replace(",", ";")
        + "\r\n"
        + 'C;Z;G;B;U;"1,01"\r\n'
        + 'C;Z;G;B;U;"1""02"\r\n'
        + 'C;Z;G;B;U;1"03\r\n'
        + "\r\n"
        + "C;Z;G;B;U;104\r\n"
    )
    source = RosterSource("h.csv", b"\xef\xbb\xbf" + text.encode())
    assert (await import_roster(session, [source])).households == 4
    assert set(await session.scalars(select(Household.room))) == {
        "1,01",
        '1"02',
        '1"03',
        "104",
    }
