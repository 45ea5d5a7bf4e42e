"""Who is late in a round, read set-based: one GROUP BY over the round's missing household
reports gives every late unit with its building, grid and zone; rollups per level are sums
over that list. The ladder, the nudge, ``/late`` and the daily summary all read it here.
"""

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import Select, bindparam, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from models.org import Household, Level, Member, Node, Post, Role
from models.posts import Recipient
from models.reports import room_order
from models.rounds import HouseholdReport, ReportStatus


class LateUnit(NamedTuple):
    """A unit with households unreported. A named tuple, not a frozen dataclass: a county's
    late units are thousands, and a tuple is made from its row several times faster."""

    unit_id: int
    building_id: int
    grid_id: int
    zone_id: int
    # The unit's path: zone/grid/building/unit.
    path: str
    missing: int

    def ancestor(self, level: Level) -> int:
        return int(getattr(self, level.ancestor_column))

    def below(self, level: Level) -> str:
        """The unit's path from just below the node of ``level``: "3号楼/2单元" below a
        grid, "2单元" below a building."""
        return "/".join(self.path.split("/")[level.depth + 1 :])

    def name_at(self, level: Level) -> str:
        """The name of the unit's ancestor at ``level``."""
        return self.path.split("/")[level.depth]

    def path_at(self, level: Level) -> str:
        return "/".join(self.path.split("/")[: level.depth + 1])


def _within(column_level: Level | None, node_id: int | None) -> ColumnElement[bool]:
    if column_level is None or node_id is None:
        return HouseholdReport.id.is_not(None)
    column: ColumnElement[int] = getattr(HouseholdReport, column_level.ancestor_column)
    return column == node_id


# The status as a literal, not a bound parameter: only then may SQLite (and PostgreSQL's
# generic plans) read the partial index ``ix_household_reports_missing``.
_MISSING: ColumnElement[str] = literal_column(f"'{ReportStatus.missing.value}'")


def missing_in(round_id: int | ColumnElement[int]) -> ColumnElement[bool]:
    return (HouseholdReport.round_id == round_id) & (HouseholdReport.status == _MISSING)


async def late_units(
    session: AsyncSession,
    round_id: int,
    level: Level | None = None,
    node_id: int | None = None,
    *,
    among: Collection[int] | None = None,
) -> list[LateUnit]:
    """Every unit with households still unreported in the round (inside the node of
    ``level``, when given; inside the nodes of ``level`` in ``among``, when given), by
    path."""
    within = level is not None and node_id is not None
    inside = level is not None and among is not None
    statement = _late_units_statement(level if within or inside else None, within, inside)
    rows = await session.execute(statement, _parameters(round_id, node_id, among))
    return sorted(map(LateUnit._make, rows), key=lambda unit: unit.path)


@lru_cache
def _late_units_statement(level: Level | None, within: bool, inside: bool) -> Select[Any]:
    """Built once per shape, its values bound: a sweep reads thousands of late units a
    chunk at a time, and building the statement cost more than running it."""
    ancestors = (
        HouseholdReport.unit_id,
        HouseholdReport.building_id,
        HouseholdReport.grid_id,
        HouseholdReport.zone_id,
    )
    # Counted first, in the partial index's own order, then each unit's path read once
    # (not once per missing household, nor sorted again for the grouping).
    counted = (
        select(*ancestors, func.count(HouseholdReport.id).label("missing"))
        .where(*_missing_where(level, within, level.ancestor_column if level and inside else None))
        .group_by(*ancestors)
        .subquery()
    )
    return select(
        counted.c.unit_id,
        counted.c.building_id,
        counted.c.grid_id,
        counted.c.zone_id,
        Node.path,
        counted.c.missing,
    ).join(Node, Node.id == counted.c.unit_id)


def _missing_where(
    level: Level | None, within: bool, among_column: str | None
) -> list[ColumnElement[bool]]:
    """The round's missing reports (``round_id``), inside the node (``node_id``) of
    ``level`` when ``within``, and with ``among_column`` among the ids ``among``."""
    where = [missing_in(bindparam("round_id"))]
    if level is not None and within:
        where.append(getattr(HouseholdReport, level.ancestor_column) == bindparam("node_id"))
    if among_column is not None:
        column = getattr(HouseholdReport, among_column)
        where.append(column.in_(bindparam("among", expanding=True)))
    return where


def _parameters(
    round_id: int, node_id: int | None, among: Collection[int] | None
) -> dict[str, Any]:
    parameters: dict[str, Any] = {"round_id": round_id, "node_id": node_id}
    if among is not None:
        parameters["among"] = sorted(among)
    return parameters


async def missing_rooms(
    session: AsyncSession,
    round_id: int,
    level: Level | None = None,
    node_id: int | None = None,
    *,
    unit_ids: Collection[int] | None = None,
) -> dict[int, list[str]]:
    """Unit id → the rooms of its households still unreported, in building order (of the
    units of ``unit_ids``, when given)."""
    within = level is not None and node_id is not None
    statement = _missing_rooms_statement(level, within, unit_ids is not None)
    rows = await session.execute(statement, _parameters(round_id, node_id, unit_ids))
    rooms: dict[int, list[str]] = defaultdict(list)
    for unit_id, room in rows:
        rooms[unit_id].append(room)
    return _in_building_order(rooms)


@lru_cache
def _missing_rooms_statement(level: Level | None, within: bool, among: bool) -> Select[int, str]:
    return (
        select(HouseholdReport.unit_id, Household.room)
        .join(Household, Household.id == HouseholdReport.household_id)
        .where(*_missing_where(level, within, "unit_id" if among else None))
    )


async def late_units_with_rooms(
    session: AsyncSession, round_id: int, unit_ids: Collection[int]
) -> tuple[list[LateUnit], dict[int, list[str]]]:
    """``late_units`` among ``unit_ids`` and their ``missing_rooms``, from one read of the
    missing households (a unit's count is its rooms'): what the unit step of the ladder
    tells each unit lead."""
    rows = await session.execute(
        _UNITS_WITH_ROOMS, {"round_id": round_id, "among": sorted(unit_ids)}
    )
    units: dict[int, tuple[int, int, int, str]] = {}
    rooms: dict[int, list[str]] = defaultdict(list)
    for unit_id, building_id, grid_id, zone_id, path, room in rows:
        if unit_id not in units:
            units[unit_id] = (building_id, grid_id, zone_id, path)
        rooms[unit_id].append(room)
    _in_building_order(rooms)
    late = [
        LateUnit(unit_id, *ancestors, len(rooms[unit_id])) for unit_id, ancestors in units.items()
    ]
    return sorted(late, key=lambda unit: unit.path), rooms


_UNITS_WITH_ROOMS = (
    select(
        HouseholdReport.unit_id,
        HouseholdReport.building_id,
        HouseholdReport.grid_id,
        HouseholdReport.zone_id,
        Node.path,
        Household.room,
    )
    .join(Household, Household.id == HouseholdReport.household_id)
    .join(Node, Node.id == HouseholdReport.unit_id)
    .where(*_missing_where(None, False, "unit_id"))
)


# Rooms repeat from unit to unit ("101", "102" …): each is parsed once per process.
_room_key = lru_cache(maxsize=4096)(room_order)


def _in_building_order(rooms: dict[int, list[str]]) -> dict[int, list[str]]:
    for unit_rooms in rooms.values():
        unit_rooms.sort(key=_room_key)
    return rooms


_READERS = (
    select(Post.node_id, Member.telegram_id, Member.id)
    .join(Member, Member.id == Post.holder_id)
    .where(
        Post.node_id.in_(bindparam("nodes", expanding=True)),
        Post.role.in_(bindparam("roles", expanding=True)),
        Member.reachable.is_(True),
    )
    .order_by(Post.node_id, Post.role != Role.lead.value)
)


@dataclass(frozen=True)
class Holder:
    node_id: int
    role: Role
    recipient: Recipient
    name: str
    reachable: bool


async def readers_at(
    session: AsyncSession, node_ids: Collection[int], roles: Sequence[Role]
) -> dict[int, list[Recipient]]:
    """Node id → who can be told about it (the reachable holders of its posts of ``roles``,
    lead first, each member once). A member who blocked the bot is named to the lead above
    instead (``PostState.unreachable``)."""
    if not node_ids:
        return {}
    rows = await session.execute(
        _READERS, {"nodes": sorted(node_ids), "roles": [role.value for role in roles]}
    )
    readers: dict[int, list[Recipient]] = defaultdict(list)
    for node_id, telegram_id, member_id in rows:
        node_readers = readers[node_id]
        if all(reader.telegram_id != telegram_id for reader in node_readers):
            node_readers.append(Recipient(telegram_id, member_id))
    return readers


async def holders_at_nodes(
    session: AsyncSession, node_ids: Iterable[int], roles: Sequence[Role] = (Role.lead,)
) -> dict[int, list[Holder]]:
    ids = sorted(set(node_ids))
    if not ids:
        return {}
    rows = await session.execute(
        select(
            Post.node_id, Post.role, Member.telegram_id, Member.id, Member.name, Member.reachable
        )
        .join(Member, Member.id == Post.holder_id)
        .where(Post.node_id.in_(ids), Post.role.in_([role.value for role in roles]))
    )
    return _by_node(rows)


def _by_node(rows: Iterable[tuple[int, str, int, int, str, bool]]) -> dict[int, list[Holder]]:
    found: dict[int, list[Holder]] = defaultdict(list)
    for node_id, role, telegram_id, member_id, name, reachable in rows:
        found[node_id].append(
            Holder(node_id, Role(role), Recipient(telegram_id, member_id), name, bool(reachable))
        )
    for holders in found.values():
        holders.sort(key=lambda holder: holder.role is not Role.lead)
    return found


class PostState(StrEnum):
    held = "held"
    vacant = "vacant"
    # Its holder blocked the bot or never started it.
    unreachable = "unreachable"


# A role by its stored value, without ``Role(value)``'s lookup for each of thousands of rows.
_ROLES = {role.value: role for role in Role}


@dataclass(frozen=True)
class PostStatus:
    role: Role
    state: PostState
    name: str | None


async def unit_posts(
    session: AsyncSession,
    round_id: int,
    level: Level | None = None,
    node_id: int | None = None,
    *,
    unit_ids: Collection[int] | None = None,
) -> dict[int, tuple[PostStatus, PostStatus]]:
    """Unit id → the state of its lead and officer posts, for each late unit (inside the
    node, when given; those of ``unit_ids``, when given): who is there to chase, or that
    nobody is."""
    units: Collection[int] | Select[int] = (
        sorted(unit_ids)
        if unit_ids is not None
        else select(HouseholdReport.unit_id)
        .where(missing_in(round_id), _within(level, node_id))
        .distinct()
    )
    rows = await session.execute(
        select(Post.node_id, Post.role, Member.name, Member.reachable)
        .outerjoin(Member, Member.id == Post.holder_id)
        .where(Post.node_id.in_(units))
    )
    states: dict[int, dict[Role, PostStatus]] = defaultdict(dict)
    vacant = {role: PostStatus(role, PostState.vacant, None) for role in Role}
    for unit_id, role_value, name, reachable in rows:
        role = _ROLES[role_value]
        states[unit_id][role] = _status(role, name, reachable) if name is not None else vacant[role]
    return {
        unit_id: (
            found.get(Role.lead, vacant[Role.lead]),
            found.get(Role.officer, vacant[Role.officer]),
        )
        for unit_id, found in states.items()
    }


_UNIT_LEADS = (
    select(Post.node_id, Member.name, Member.reachable)
    .outerjoin(Member, Member.id == Post.holder_id)
    .where(Post.node_id.in_(bindparam("units", expanding=True)), Post.role == Role.lead.value)
)


async def unit_leads(session: AsyncSession, unit_ids: Collection[int]) -> dict[int, PostStatus]:
    """Unit id → the state of its lead post, for each of ``unit_ids`` that has one: who is
    there to chase (a building lead's message names no officer)."""
    if not unit_ids:
        return {}
    rows = await session.execute(_UNIT_LEADS, {"units": sorted(unit_ids)})
    vacant = PostStatus(Role.lead, PostState.vacant, None)
    return {
        unit_id: _status(Role.lead, name, reachable) if name is not None else vacant
        for unit_id, name, reachable in rows
    }


def _status(role: Role, name: str, reachable: bool) -> PostStatus:
    return PostStatus(role, PostState.held if reachable else PostState.unreachable, name)


@dataclass(frozen=True)
class Rollup:
    """The late units under one node."""

    node_id: int
    path: str
    units: list[LateUnit]

    @property
    def missing(self) -> int:
        return sum(unit.missing for unit in self.units)


def roll_up(units: Iterable[LateUnit], level: Level) -> list[Rollup]:
    """The late units grouped by their ancestor of ``level``, by path."""
    grouped: dict[int, list[LateUnit]] = defaultdict(list)
    for unit in units:
        grouped[unit.ancestor(level)].append(unit)
    return sorted(
        (Rollup(node_id, found[0].path_at(level), found) for node_id, found in grouped.items()),
        key=lambda rollup: rollup.path,
    )
