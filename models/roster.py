"""Importing the county's roster: the tree of zones, grids, buildings and units, its
households, and the people named for its posts.

Everything is validated first (``models.roster_parse`` for the files, here against the
database); on any problem nothing is written. Then one transaction writes in bulk: the
existing tree is read once into a dict by path, and rows go in by the thousand, never
a query per row. Importing the same files again adds nothing; only ``prune`` deletes.

Reading the files and checking them against the tree read from the database run in a
worker thread: a large roster must not stall the bot's event loop.
"""

import asyncio
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, TypeVar, cast

from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.audit import record
from models.base import utcnow
from models.org import LEVELS, Household, Level, Member, Node, Post, Role
from models.roster_files import NO_LIMITS, RosterLimits, RosterSource
from models.roster_parse import (
    ParsedRoster,
    PlannedNode,
    ProgressCallback,
    RosterProblem,
    RosterTooLarge,
    RosterValidationError,
    Where,
    parse_sources,
)
from models.text import shown

__all__ = [
    "ImportReport",
    "ProgressCallback",
    "PrunePlan",
    "RosterLimits",
    "RosterProblem",
    "RosterSource",
    "RosterTooLarge",
    "RosterValidationError",
    "import_roster",
    "plan_prune",
]

NODES = cast(Table, Node.__table__)
POSTS = cast(Table, Post.__table__)
HOUSEHOLDS = cast(Table, Household.__table__)
# Rows per statement: large enough to amortise the round trip, small enough to bound memory.
CHUNK = 5_000
# Ids per IN (...) list, well under SQLite's limit on bound parameters.
ID_CHUNK = 500
# The stage name the progress callback hears while rows are written.
WRITING = "writing"
ANCESTOR_COLUMNS = tuple(level.ancestor_column for level in LEVELS)

T = TypeVar("T")
# A node's ancestor ids by level, its own included: (zone_id, grid_id, building_id, unit_id).
Ancestry = tuple[int | None, int | None, int | None, int | None]


@dataclass
class ImportReport:
    """What this import added or changed; all zeros when the files were imported before."""

    zones: int = 0
    grids: int = 0
    buildings: int = 0
    units: int = 0
    households: int = 0
    posts: int = 0
    people: int = 0
    pruned_nodes: list[str] = field(default_factory=list)
    pruned_households: int = 0


@dataclass
class PrunePlan:
    """What ``prune=True`` would delete: node paths, households as "unit path room", and
    the held posts that forbid it, as "path role (member)"."""

    nodes: list[str]
    households: list[str]
    held_posts: list[str]


@dataclass
class _Database:
    """The tree as it stands, read once."""

    nodes: dict[str, Any]  # path → row of (id, level, name, path, community, *ancestors)
    # id, unit_id, room of every household; only read when the import needs them.
    households: Sequence[Any] = ()


async def import_roster(
    session: AsyncSession,
    sources: list[RosterSource],
    *,
    prune: bool = False,
    actor_telegram_id: int | None = None,
    limits: RosterLimits = NO_LIMITS,
    progress: ProgressCallback | None = None,
) -> ImportReport:
    """Validate ``sources`` as a whole, then write them in one transaction and commit.

    Raises RosterValidationError, having written nothing, when any file has a problem or
    the files exceed ``limits``. With ``prune``, nodes and households absent from the
    households files are deleted, unless a member holds a post among them. ``progress``
    is called from a worker thread while the files are read, then from the caller's.
    """
    roster = await _parse(sources, limits, progress)
    database = await _load_database(session, roster, with_households=prune)
    checked = await asyncio.to_thread(_check_against_database, roster, database)
    problems = roster.problems + checked
    plan: _Prune | None = None
    if prune:
        plan = await _plan_prune(session, roster, database, sources)
        problems += plan.problems + plan.held
    if problems:
        raise RosterValidationError(_in_file_order(problems, sources))

    try:
        report = await _write(session, roster, database, progress)
        if plan is not None:
            await _delete(session, plan)
            report.pruned_nodes = plan.public.nodes
            report.pruned_households = len(plan.public.households)
        record(
            session,
            "roster.import",
            actor_telegram_id,
            files=[source.name for source in sources],
            zones=report.zones,
            grids=report.grids,
            buildings=report.buildings,
            units=report.units,
            households=report.households,
            posts=report.posts,
            people=report.people,
            pruned_nodes=len(report.pruned_nodes),
            pruned_households=report.pruned_households,
        )
        await session.commit()
    except BaseException:
        await session.rollback()
        raise
    return report


async def plan_prune(
    session: AsyncSession, sources: list[RosterSource], *, limits: RosterLimits = NO_LIMITS
) -> PrunePlan:
    """What ``import_roster(..., prune=True)`` would delete, without writing anything.

    Raises RosterValidationError when the files have problems; posts held by members
    are listed in ``held_posts`` rather than raised, so that they can be shown first.
    """
    roster = await _parse(sources, limits, None)
    database = await _load_database(session, roster, with_households=True)
    plan = await _plan_prune(session, roster, database, sources)
    checked = await asyncio.to_thread(_check_against_database, roster, database)
    problems = roster.problems + checked + plan.problems
    if problems:
        raise RosterValidationError(_in_file_order(problems, sources))
    return plan.public


async def _parse(
    sources: list[RosterSource], limits: RosterLimits, progress: ProgressCallback | None
) -> ParsedRoster:
    roster = await asyncio.to_thread(parse_sources, sources, limits=limits, progress=progress)
    if roster.exceeded is not None:
        # Reading stopped there: the rest of the files was not checked.
        raise RosterTooLarge(roster.problems, roster.exceeded)
    return roster


async def _load_database(
    session: AsyncSession, roster: ParsedRoster, *, with_households: bool
) -> _Database:
    columns = [NODES.c.id, NODES.c.level, NODES.c.name, NODES.c.path, NODES.c.community]
    columns += [NODES.c[column] for column in ANCESTOR_COLUMNS]
    rows = (await session.execute(select(*columns))).all()
    database = _Database(nodes={row.path: row for row in rows})
    known_units = with_households or any(path in database.nodes for path in roster.rooms)
    if known_units:
        query = select(HOUSEHOLDS.c.id, HOUSEHOLDS.c.unit_id, HOUSEHOLDS.c.room)
        database.households = (await session.execute(query)).all()
    return database


def _check_against_database(roster: ParsedRoster, database: _Database) -> list[RosterProblem]:
    problems: list[RosterProblem] = []
    compounds = {
        (row.community, row.name): row.path
        for row in database.nodes.values()
        if row.level == Level.grid
    }
    for node in roster.nodes.values():
        if node.level is not Level.grid:
            continue
        existing = database.nodes.get(node.path)
        if existing is not None and existing.community != node.community:
            problems.append(
                _problem(
                    node.where,
                    f"grid {shown(node.path)} is in community {shown(existing.community)} "
                    f"in the database, not {shown(node.community or '')}",
                )
            )
            continue
        other = compounds.get((node.community, node.name))
        if other is not None and other != node.path:
            problems.append(
                _problem(
                    node.where,
                    f"compound {shown(node.name)} of community {shown(node.community or '')} "
                    f"is under zone {shown(other.split('/')[0])} in the database, "
                    f"not {shown(node.parent_path or '')}",
                )
            )
    for person in roster.people:
        if person.path not in database.nodes and person.path not in roster.nodes:
            problems.append(
                _problem(
                    person.where,
                    f"no zone, grid, building or unit {shown(person.path)} in the database "
                    "or in the households files",
                )
            )
    return problems


@dataclass
class _Prune:
    public: PrunePlan
    node_ids: list[int] = field(default_factory=list)  # deepest first: children go first
    household_ids: list[int] = field(default_factory=list)
    problems: list[RosterProblem] = field(default_factory=list)
    # One problem per post held by a member among the nodes to delete.
    held: list[RosterProblem] = field(default_factory=list)


async def _plan_prune(
    session: AsyncSession,
    roster: ParsedRoster,
    database: _Database,
    sources: list[RosterSource],
) -> _Prune:
    if not roster.household_files:
        problem = RosterProblem(
            sources[0].name if sources else "",
            0,
            "pruning needs a households file: it deletes what the households files lack",
        )
        return _Prune(PrunePlan([], [], []), problems=[problem])
    problems = []
    if not roster.rooms and database.nodes:
        problems.append(
            RosterProblem(
                roster.household_files[0],
                0,
                "the households files have no rows: pruning would remove the whole county",
            )
        )
    for person in roster.people:
        if person.path not in roster.nodes:
            problems.append(
                _problem(
                    person.where,
                    f"{shown(person.path)} is not in the households files, "
                    "so pruning would remove it",
                )
            )
    gone = [row for path, row in database.nodes.items() if path not in roster.nodes]
    gone.sort(key=lambda row: row.path.split("/"))
    gone_ids = {row.id for row in gone}
    path_by_id = {row.id: row.path for row in database.nodes.values()}
    households: list[tuple[int, str]] = []
    for household in database.households:
        unit_path = path_by_id[household.unit_id]
        if household.unit_id in gone_ids or household.room not in roster.rooms.get(unit_path, {}):
            households.append((household.id, f"{unit_path} {household.room}"))

    held_query = (
        select(Post.node_id, Post.role, Member.name)
        .join(Member, Member.id == Post.holder_id)
        .order_by(Post.node_id, Post.role)
    )
    held: list[str] = []
    held_problems: list[RosterProblem] = []
    where = Where(roster.household_files[0], 0)
    by_id = {row.id: row for row in gone}
    for node_id, role, member in (await session.execute(held_query)).all():
        node = by_id.get(node_id)
        if node is None:
            continue
        held.append(f"{node.path} {role} ({member})")
        held_problems.append(
            _problem(
                where,
                f"cannot remove {node.level} {shown(node.path)}: its {role} post is held "
                f"by {shown(member)}",
            )
        )
    plan = PrunePlan(
        nodes=[row.path for row in gone],
        households=sorted(label for _, label in households),
        held_posts=held,
    )
    deepest_first = sorted(gone, key=lambda row: -Level(row.level).depth)
    return _Prune(
        plan,
        node_ids=[row.id for row in deepest_first],
        household_ids=[id_ for id_, _ in households],
        problems=problems,
        held=held_problems,
    )


async def _write(
    session: AsyncSession,
    roster: ParsedRoster,
    database: _Database,
    progress: ProgressCallback | None,
) -> ImportReport:
    report = ImportReport()
    now = utcnow()
    ancestry: dict[str, Ancestry] = {
        path: (row.zone_id, row.grid_id, row.building_id, row.unit_id)
        for path, row in database.nodes.items()
    }
    new_nodes: dict[Level, list[PlannedNode]] = {level: [] for level in LEVELS}
    for node in roster.nodes.values():
        if node.path not in database.nodes:
            new_nodes[node.level].append(node)
    rooms_by_unit: dict[int, set[str]] = {}
    for household in database.households:
        rooms_by_unit.setdefault(household.unit_id, set()).add(household.room)
    total_nodes = sum(len(nodes) for nodes in new_nodes.values())
    total = total_nodes * 3 + sum(map(len, roster.rooms.values())) + len(roster.people)

    def advance(rows: int) -> None:
        if progress is not None:
            progress(WRITING, rows, None)

    if progress is not None:
        progress(WRITING, 0, total)
    for level in LEVELS:
        await _insert_nodes(session, level, new_nodes[level], ancestry, now, advance)
        setattr(report, level.value + "s", len(new_nodes[level]))
    report.posts = await _insert_posts(session, new_nodes, ancestry, advance)
    report.households = await _insert_households(
        session, roster, ancestry, rooms_by_unit, now, advance
    )
    report.people = await _update_people(session, roster, ancestry, advance)
    return report


async def _insert_nodes(
    session: AsyncSession,
    level: Level,
    nodes: list[PlannedNode],
    ancestry: dict[str, Ancestry],
    now: object,
    advance: Callable[[int], None],
) -> None:
    if not nodes:
        return
    statement = insert(NODES).returning(NODES.c.id, NODES.c.path)
    for chunk in _chunks(nodes, CHUNK):
        rows = []
        for node in chunk:
            parent = ancestry[node.parent_path] if node.parent_path else (None,) * 4
            rows.append(
                {
                    "level": level.value,
                    "name": node.name,
                    "path": node.path,
                    "parent_id": parent[level.depth - 1] if node.parent_path else None,
                    "community": node.community,
                    "created_at": now,
                    **dict(zip(ANCESTOR_COLUMNS, parent, strict=True)),
                }
            )
        for node_id, path in await session.execute(statement, rows):
            parent_path = path.rpartition("/")[0]
            own = list(ancestry[parent_path] if parent_path else (None,) * 4)
            own[level.depth] = node_id
            ancestry[path] = cast(Ancestry, tuple(own))
        advance(len(chunk))
    # A node's own level column holds its own id, known only now.
    own_column = NODES.c[level.ancestor_column]
    await session.execute(
        update(NODES)
        .where(NODES.c.level == level.value, own_column.is_(None))
        .values({own_column: NODES.c.id})
    )


async def _insert_posts(
    session: AsyncSession,
    new_nodes: dict[Level, list[PlannedNode]],
    ancestry: dict[str, Ancestry],
    advance: Callable[[int], None],
) -> int:
    rows = (
        {"node_id": ancestry[node.path][level.depth], "role": role.value}
        for level, nodes in new_nodes.items()
        for node in nodes
        for role in Role
    )
    count = 0
    for chunk in _chunks(rows, CHUNK):
        await session.execute(insert(POSTS), chunk)
        count += len(chunk)
        advance(len(chunk))
    return count


async def _insert_households(
    session: AsyncSession,
    roster: ParsedRoster,
    ancestry: dict[str, Ancestry],
    rooms_by_unit: dict[int, set[str]],
    now: object,
    advance: Callable[[int], None],
) -> int:
    def rows() -> Iterator[dict[str, object]]:
        for unit_path, rooms in roster.rooms.items():
            zone_id, grid_id, building_id, unit_id = ancestry[unit_path]
            existing = rooms_by_unit.get(cast(int, unit_id), set())
            advance(len(rooms))
            for room in rooms:
                if room not in existing:
                    yield {
                        "unit_id": unit_id,
                        "room": room,
                        "zone_id": zone_id,
                        "grid_id": grid_id,
                        "building_id": building_id,
                        "attributes": {},
                        "created_at": now,
                    }

    count = 0
    for chunk in _chunks(rows(), CHUNK):
        await session.execute(insert(HOUSEHOLDS), chunk)
        count += len(chunk)
    return count


async def _update_people(
    session: AsyncSession,
    roster: ParsedRoster,
    ancestry: dict[str, Ancestry],
    advance: Callable[[int], None],
) -> int:
    if not roster.people:
        return 0
    wanted = {
        (_node_id(ancestry, person.path), person.role.value): person for person in roster.people
    }
    node_ids = sorted({node_id for node_id, _ in wanted})
    changes = []
    for ids in _chunks(node_ids, ID_CHUNK):
        query = select(
            POSTS.c.id, POSTS.c.node_id, POSTS.c.role, POSTS.c.roster_name, POSTS.c.roster_phone
        ).where(POSTS.c.node_id.in_(ids))
        for post in await session.execute(query):
            person = wanted.get((post.node_id, post.role))
            if person and (post.roster_name, post.roster_phone) != (person.name, person.phone):
                changes.append({"post": post.id, "name": person.name, "phone": person.phone})
    statement = (
        update(POSTS)
        .where(POSTS.c.id == bindparam("post"))
        .values(roster_name=bindparam("name"), roster_phone=bindparam("phone"))
    )
    for chunk in _chunks(changes, CHUNK):
        await session.execute(statement, chunk)
    advance(len(roster.people))
    return len(changes)


async def _delete(session: AsyncSession, plan: _Prune) -> None:
    # Cascades would do most of this; explicit deletes keep it independent of them.
    for ids in _chunks(plan.household_ids, ID_CHUNK):
        await session.execute(delete(HOUSEHOLDS).where(HOUSEHOLDS.c.id.in_(ids)))
    for ids in _chunks(plan.node_ids, ID_CHUNK):
        await session.execute(delete(POSTS).where(POSTS.c.node_id.in_(ids)))
    for ids in _chunks(plan.node_ids, ID_CHUNK):
        await session.execute(delete(NODES).where(NODES.c.id.in_(ids)))


def _node_id(ancestry: dict[str, Ancestry], path: str) -> int:
    return cast(int, ancestry[path][path.count("/")])


def _problem(where: Where, message: str) -> RosterProblem:
    return RosterProblem(where.file, where.line, message)


def _in_file_order(
    problems: list[RosterProblem], sources: list[RosterSource]
) -> list[RosterProblem]:
    order = {source.name: index for index, source in enumerate(sources)}
    return sorted(problems, key=lambda problem: (order.get(problem.file, -1), problem.line))


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk
