"""Reading roster files (CSV or XLSX) into a plan of nodes, rooms and people, checking
everything that can be checked without the database. The files' rows as text cells come
from ``models.roster_files``.

Line numbers are the ones a spreadsheet user sees: the header is line 1, blank lines
count. A whole-file problem (unreadable, wrong type, too large) is reported on line 0.

Parsing is plain CPU work with no I/O: callers on an event loop run it in a thread.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from openpyxl.utils import get_column_letter

from models.org import LEVELS, Level, Role
from models.phones import normalize_phone
from models.roster_files import (
    EXCEL_ERRORS,
    NO_LIMITS,
    LimitExceeded,
    NotText,
    RosterLimits,
    RosterSource,
    TooLarge,
    UnreadableFile,
    file_suffix,
    read_rows,
)
from models.text import CONTROL_CHARACTERS, shown

HOUSEHOLD_COLUMNS = ("community", "zone", "grid", "building", "unit", "room")
PEOPLE_COLUMNS = ("path", "role", "name", "phone")
# Column widths of the tables (models/org.py); PostgreSQL refuses longer values.
MAX_NAME = 200
MAX_ROOM = 100
# Rows read between two calls of the progress callback.
PROGRESS_EVERY = 1_000

# Called with a stage's name, the rows done since the last call, and the stage's total when
# known; the command line draws progress bars with it.
ProgressCallback = Callable[[str, int, "int | None"], None]


class RosterKind(StrEnum):
    households = "households"
    people = "people"


COLUMNS = {RosterKind.households: HOUSEHOLD_COLUMNS, RosterKind.people: PEOPLE_COLUMNS}


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


class RosterTooLarge(RosterValidationError):
    """The files exceed a RosterLimits limit; reading stopped there."""

    def __init__(self, errors: list[RosterProblem], exceeded: LimitExceeded) -> None:
        super().__init__(errors)
        self.exceeded = exceeded


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
    # Unit path → room → (file, line) first naming it. Plain tuples of a string and an int,
    # which the garbage collector stops tracking: a county has one per household, and
    # collections that scan them all would stall the bot's event loop.
    rooms: dict[str, dict[str, tuple[str, int]]] = field(default_factory=dict)
    people: list[PersonRow] = field(default_factory=list)
    household_files: list[str] = field(default_factory=list)
    problems: list[RosterProblem] = field(default_factory=list)
    # (community, compound name) → its first grid, to find one compound under two zones.
    compounds: dict[tuple[str, str], PlannedNode] = field(default_factory=dict)
    people_seen: dict[tuple[str, Role], Where] = field(default_factory=dict)
    # Data rows read so far, over all files; reading stops at the first limit exceeded.
    rows: int = 0
    exceeded: LimitExceeded | None = None

    def problem(self, where: Where, message: str) -> None:
        self.problems.append(RosterProblem(where.file, where.line, message))


def parse_sources(
    sources: list[RosterSource],
    *,
    limits: RosterLimits = NO_LIMITS,
    progress: ProgressCallback | None = None,
) -> ParsedRoster:
    roster = ParsedRoster()
    for source in sources:
        _parse_source(roster, source, limits, progress)
        if roster.exceeded is not None:
            break
    return roster


def _parse_source(
    roster: ParsedRoster,
    source: RosterSource,
    limits: RosterLimits,
    progress: ProgressCallback | None,
) -> None:
    whole_file = Where(source.name, 0)
    try:
        rows = read_rows(source, limits)
        header_line, header = next(rows, (0, []))
    except TooLarge as error:
        roster.problem(whole_file, str(error))
        roster.exceeded = error.exceeded
        return
    except UnreadableFile as error:
        roster.problem(Where(source.name, error.line), str(error))
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
    stage = f"reading {source.name}"
    if progress is not None:
        total = source.content.count(b"\n") if file_suffix(source) == "csv" else None
        progress(stage, 0, total)
    unreported = 0
    try:
        for line, cells in rows:
            where = Where(source.name, line)
            roster.rows += 1
            if limits.max_rows is not None and roster.rows > limits.max_rows:
                roster.problem(
                    where,
                    f"more than {limits.max_rows} rows, the most one import takes "
                    "([roster] max_rows): split the roster into several imports",
                )
                roster.exceeded = LimitExceeded(source.name, "max_rows", limits.max_rows)
                return
            unreported += 1
            if progress is not None and unreported == PROGRESS_EVERY:
                progress(stage, unreported, None)
                unreported = 0
            extra = next((i for i in range(width, len(cells)) if cells[i]), None)
            if extra is not None:
                column = get_column_letter(extra + 1)
                roster.problem(where, f"a value in column {column}, which has no header")
            values = [cells[i] if i < len(cells) else "" for i in positions]
            empty = [column for column, value in zip(columns, values, strict=True) if not value]
            for column in empty:
                roster.problem(where, f"empty cell in column {column}")
            bad = _bad_cells(roster, where, columns, values)
            if extra is None and not empty and not bad:
                add_row(roster, where, values)
    except UnreadableFile as error:
        roster.problem(Where(source.name, error.line), str(error))
    finally:
        if progress is not None and unreported:
            progress(stage, unreported, None)


def _bad_cells(
    roster: ParsedRoster, where: Where, columns: tuple[str, ...], values: list[str]
) -> bool:
    """Report every cell that is not text (a date in an XLSX file…) or holds a control
    character (NUL, a line break…); True if any."""
    found = False
    for column, value in zip(columns, values, strict=True):
        if isinstance(value, NotText):
            roster.problem(
                where,
                f"{value} in column {column}, not text: format the column as text in Excel "
                "and type the cell again",
            )
            found = True
            continue
        if value.upper() in EXCEL_ERRORS:
            roster.problem(
                where,
                f"Excel's error value {value} in column {column}: a formula there failed; "
                "fix it, or type the cell's value in Excel",
            )
            found = True
            continue
        control = CONTROL_CHARACTERS.search(value)
        if control is not None:
            roster.problem(
                where,
                f"control character U+{ord(control.group()):04X} in column {column}: "
                "remove it from the cell",
            )
            found = True
    return found


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
                where,
                f"unknown column {shown(column)} (a {kind} file has {', '.join(expected)})",
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
            roster.problem(where, f'{level} name "{shown(name)}" contains "/"')
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
    here = (where.file, where.line)
    first = unit_rooms.setdefault(room, here)
    if first != here:
        roster.problem(
            where,
            f"duplicate room {shown(room)} in unit {shown(path)} "
            f"(first on {Where(*first).first(where.file)})",
        )


def _check_compound(
    roster: ParsedRoster, where: Where, grid: PlannedNode, community: str, zone: str
) -> None:
    if grid.community != community:
        roster.problem(
            where,
            f"grid {shown(grid.path)} is in community {shown(community)} here but in "
            f"community {shown(grid.community or '')} on {grid.where.first(where.file)}",
        )
        return
    # A compound is known by its name within its community: it cannot sit in two zones.
    compound = roster.compounds[(community, grid.name)]
    if compound is not grid:
        other_zone = compound.parent_path
        roster.problem(
            where,
            f"compound {shown(grid.name)} of community {shown(community)} is under zone "
            f"{shown(zone)} here but under zone {shown(other_zone or '')} on "
            f"{compound.where.first(where.file)}",
        )


def _add_person(roster: ParsedRoster, where: Where, values: list[str]) -> None:
    raw_path, raw_role, name, raw_phone = values
    names = [part.strip() for part in raw_path.split("/")]
    path = "/".join(names)
    bad = False
    if not all(names):
        roster.problem(where, f"path {shown(raw_path)} has an empty name between two “/”")
        bad = True
    elif len(names) > len(LEVELS):
        roster.problem(
            where,
            f"path {shown(path)} has {len(names)} names; a zone, grid, building or unit "
            f"has 1 to {len(LEVELS)}",
        )
        bad = True
    role_text = raw_role.lower()
    if role_text not in Role.__members__:
        roster.problem(where, f'unknown role "{shown(raw_role)}" (use lead or officer)')
        bad = True
    if len(name) > MAX_NAME:
        roster.problem(where, f"name is longer than {MAX_NAME} characters")
        bad = True
    phone = normalize_phone(raw_phone)
    if phone is None:
        roster.problem(
            where,
            f'malformed phone "{shown(raw_phone)}" (write a mainland mobile such as 13800138000 '
            "or an international number starting with +)",
        )
        bad = True
    if bad or phone is None:
        return
    role = Role(role_text)
    first = roster.people_seen.setdefault((path, role), where)
    if first is not where:
        roster.problem(
            where, f"duplicate {role} for {shown(path)} (first on {first.first(where.file)})"
        )
        return
    roster.people.append(PersonRow(path, role, name, phone, where))
