"""Reading roster files (CSV or XLSX) into a plan of nodes, rooms and people, checking
everything that can be checked without the database.

Line numbers are the ones a spreadsheet user sees: the header is line 1, blank lines
count. A whole-file problem (unreadable, wrong type) is reported on line 0.
"""

import csv
import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from tqdm import tqdm

from models.org import LEVELS, Level, Role
from models.phones import normalize_phone

HOUSEHOLD_COLUMNS = ("community", "zone", "grid", "building", "unit", "room")
PEOPLE_COLUMNS = ("path", "role", "name", "phone")
# Column widths of the tables (models/org.py); PostgreSQL refuses longer values.
MAX_NAME = 200
MAX_ROOM = 100


class RosterKind(StrEnum):
    households = "households"
    people = "people"


COLUMNS = {RosterKind.households: HOUSEHOLD_COLUMNS, RosterKind.people: PEOPLE_COLUMNS}


@dataclass(frozen=True)
class RosterSource:
    """A roster file as uploaded; its name's extension (.csv or .xlsx) decides how it is read."""

    name: str
    content: bytes


@dataclass(frozen=True)
class RosterProblem:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class RosterValidationError(Exception):
    def __init__(self, errors: list[RosterProblem]) -> None:
        self.errors = errors
        shown = "\n".join(str(problem) for problem in errors[:20])
        more = f"\n… and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(f"{len(errors)} problem(s) in the roster:\n{shown}{more}")


@dataclass(frozen=True, slots=True)
class Where:
    file: str
    line: int

    def first(self, here: str) -> str:
        """How to point back at this place from a problem in file ``here``."""
        return f"line {self.line}" if self.file == here else f"{self.file} line {self.line}"


@dataclass(slots=True)
class PlannedNode:
    level: Level
    name: str
    path: str
    parent_path: str | None
    community: str | None
    where: Where


@dataclass(frozen=True, slots=True)
class PersonRow:
    path: str
    role: Role
    name: str
    phone: str
    where: Where


@dataclass
class ParsedRoster:
    # Parents come before their children: rows name a node's ancestors before it.
    nodes: dict[str, PlannedNode] = field(default_factory=dict)
    # Unit path → room → first line naming it.
    rooms: dict[str, dict[str, Where]] = field(default_factory=dict)
    people: list[PersonRow] = field(default_factory=list)
    household_files: list[str] = field(default_factory=list)
    problems: list[RosterProblem] = field(default_factory=list)
    # (community, compound name) → its first grid, to find one compound under two zones.
    compounds: dict[tuple[str, str], PlannedNode] = field(default_factory=dict)
    people_seen: dict[tuple[str, Role], Where] = field(default_factory=dict)

    def problem(self, where: Where, message: str) -> None:
        self.problems.append(RosterProblem(where.file, where.line, message))


def parse_sources(sources: list[RosterSource], *, progress: bool = False) -> ParsedRoster:
    roster = ParsedRoster()
    for source in sources:
        _parse_source(roster, source, progress)
    return roster


def _parse_source(roster: ParsedRoster, source: RosterSource, progress: bool) -> None:
    whole_file = Where(source.name, 0)
    try:
        rows = _read_rows(source)
        header_line, header = next(rows, (0, []))
    except _UnreadableFile as error:
        roster.problem(whole_file, str(error))
        return
    if not header:
        roster.problem(whole_file, "the file is empty")
        return
    kind, header = _check_header(roster, Where(source.name, header_line), header)
    if kind is None:
        return
    if kind is RosterKind.households:
        roster.household_files.append(source.name)
    add_row = _add_household if kind is RosterKind.households else _add_person
    columns = COLUMNS[kind]
    positions = [header.index(column) for column in columns]
    width = len(header)
    bar = tqdm(
        desc=f"reading {source.name}",
        unit=" rows",
        file=sys.stderr,
        disable=None if progress else True,
        total=source.content.count(b"\n") if progress and _suffix(source) == "csv" else None,
    )
    try:
        for line, cells in rows:
            bar.update()
            where = Where(source.name, line)
            extra = next((i for i in range(width, len(cells)) if cells[i]), None)
            if extra is not None:
                column = get_column_letter(extra + 1)
                roster.problem(where, f"a value in column {column}, which has no header")
            values = [cells[i] if i < len(cells) else "" for i in positions]
            empty = [column for column, value in zip(columns, values, strict=True) if not value]
            for column in empty:
                roster.problem(where, f"empty cell in column {column}")
            if extra is None and not empty:
                add_row(roster, where, values)
    except _UnreadableFile as error:
        roster.problem(whole_file, str(error))
    finally:
        bar.close()


class _UnreadableFile(Exception):
    pass


def _read_rows(source: RosterSource) -> Iterator[tuple[int, list[str]]]:
    """(line, trimmed cells) of every non-blank row."""
    suffix = _suffix(source)
    if suffix == "csv":
        rows = _csv_rows(source.content)
    elif suffix == "xlsx":
        rows = _xlsx_rows(source.content)
    else:
        raise _UnreadableFile("unsupported file type: send a .csv or .xlsx file")
    return ((line, cells) for line, cells in enumerate(rows, start=1) if any(cells))


def _suffix(source: RosterSource) -> str:
    return source.name.rsplit(".", 1)[-1].lower() if "." in source.name else ""


def _csv_rows(content: bytes) -> Iterator[list[str]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise _UnreadableFile(
            "cannot read the file: it is not UTF-8 text (in Excel, save as “CSV UTF-8”)"
        ) from error
    first_line = text.split("\n", 1)[0]
    # Excel writes semicolons or tabs in some locales.
    delimiter = next((d for d in (",", "\t", ";") if d in first_line), ",")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for cells in reader:
            yield [cell.strip() for cell in cells]
    except csv.Error as error:
        raise _UnreadableFile(f"cannot read line {reader.line_num}: {error}") from error


def _xlsx_rows(content: bytes) -> Iterator[list[str]]:
    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many kinds on a damaged or foreign file
        raise _UnreadableFile(f"cannot read the file as an Excel workbook ({error})") from error
    try:
        sheet = workbook.worksheets[0]
        # Some programs write a wrong sheet size; without it openpyxl reads every row.
        sheet.reset_dimensions()
        for row in sheet.iter_rows(values_only=True):
            yield [_cell_text(value) for value in row]
    finally:
        workbook.close()


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        # Excel keeps numbers as floats: room 301 and phone 13800138000 come back as x.0.
        return str(int(value))
    return str(value).strip()


def _check_header(
    roster: ParsedRoster, where: Where, cells: list[str]
) -> tuple[RosterKind | None, list[str]]:
    """The kind of file and its lower-cased column names; no kind when the header is bad."""
    header = [cell.lower() for cell in cells]
    while header and not header[-1]:
        header.pop()
    kind = max(RosterKind, key=lambda k: len(set(header) & set(COLUMNS[k])))
    if not set(header) & set(COLUMNS[kind]):
        roster.problem(
            where,
            "cannot tell what the file holds: a households file has the columns "
            f"{', '.join(HOUSEHOLD_COLUMNS)}; a people file has {', '.join(PEOPLE_COLUMNS)}",
        )
        return None, header
    before = len(roster.problems)
    expected = COLUMNS[kind]
    for column in expected:
        if column not in header:
            roster.problem(where, f"missing column {column}")
    seen: dict[str, int] = {}
    for index, column in enumerate(header):
        letter = get_column_letter(index + 1)
        if not column:
            roster.problem(where, f"empty header in column {letter}")
        elif column not in expected:
            roster.problem(
                where, f"unknown column {column} (a {kind} file has {', '.join(expected)})"
            )
        elif column in seen:
            first = get_column_letter(seen[column] + 1)
            roster.problem(where, f"column {column} appears twice (columns {first} and {letter})")
        seen.setdefault(column, index)
    return (kind if len(roster.problems) == before else None), header


def _add_household(roster: ParsedRoster, where: Where, values: list[str]) -> None:
    community, zone, grid, building, unit, room = values
    names = (zone, grid, building, unit)
    bad = False
    for level, name in zip(LEVELS, names, strict=True):
        if "/" in name:
            roster.problem(where, f'{level} name "{name}" contains "/"')
            bad = True
        if len(name) > MAX_NAME:
            roster.problem(where, f"{level} name is longer than {MAX_NAME} characters")
            bad = True
    if len(community) > MAX_NAME:
        roster.problem(where, f"community name is longer than {MAX_NAME} characters")
        bad = True
    if len(room) > MAX_ROOM:
        roster.problem(where, f"room is longer than {MAX_ROOM} characters")
        bad = True
    if bad:
        return

    nodes = roster.nodes
    path = ""
    parent_path: str | None = None
    for level, name in zip(LEVELS, names, strict=True):
        path = f"{parent_path}/{name}" if parent_path else name
        node = nodes.get(path)
        if node is None:
            grid_community = community if level is Level.grid else None
            node = nodes[path] = PlannedNode(level, name, path, parent_path, grid_community, where)
            if level is Level.grid:
                roster.compounds.setdefault((community, grid), node)
        if level is Level.grid:
            _check_compound(roster, where, node, community, zone)
        parent_path = path

    unit_rooms = roster.rooms.setdefault(path, {})
    first = unit_rooms.setdefault(room, where)
    if first is not where:
        roster.problem(
            where, f"duplicate room {room} in unit {path} (first on {first.first(where.file)})"
        )


def _check_compound(
    roster: ParsedRoster, where: Where, grid: PlannedNode, community: str, zone: str
) -> None:
    if grid.community != community:
        roster.problem(
            where,
            f"grid {grid.path} is in community {community} here but in community "
            f"{grid.community} on {grid.where.first(where.file)}",
        )
        return
    # A compound is known by its name within its community: it cannot sit in two zones.
    compound = roster.compounds[(community, grid.name)]
    if compound is not grid:
        other_zone = compound.parent_path
        roster.problem(
            where,
            f"compound {grid.name} of community {community} is under zone {zone} here but "
            f"under zone {other_zone} on {compound.where.first(where.file)}",
        )


def _add_person(roster: ParsedRoster, where: Where, values: list[str]) -> None:
    raw_path, raw_role, name, raw_phone = values
    names = [part.strip() for part in raw_path.split("/")]
    path = "/".join(names)
    bad = False
    if not all(names):
        roster.problem(where, f"path {raw_path} has an empty name between two “/”")
        bad = True
    elif len(names) > len(LEVELS):
        roster.problem(
            where,
            f"path {path} has {len(names)} names; a zone, grid, building or unit "
            f"has 1 to {len(LEVELS)}",
        )
        bad = True
    role_text = raw_role.lower()
    if role_text not in Role.__members__:
        roster.problem(where, f'unknown role "{raw_role}" (use lead or officer)')
        bad = True
    if len(name) > MAX_NAME:
        roster.problem(where, f"name is longer than {MAX_NAME} characters")
        bad = True
    phone = normalize_phone(raw_phone)
    if phone is None:
        roster.problem(
            where,
            f'malformed phone "{raw_phone}" (write a mainland mobile such as 13800138000 '
            "or an international number starting with +)",
        )
        bad = True
    if bad or phone is None:
        return
    role = Role(role_text)
    first = roster.people_seen.setdefault((path, role), where)
    if first is not where:
        roster.problem(where, f"duplicate {role} for {path} (first on {first.first(where.file)})")
        return
    roster.people.append(PersonRow(path, role, name, phone, where))
