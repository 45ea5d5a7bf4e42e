"""Importing the county's roster: the tree of zones, grids, buildings and units, its
households, and the people named for its posts.

Everything is validated first (``models.roster_parse`` for the files, here against the
database); on any problem nothing is written. Then one transaction writes in bulk
(``models.roster_write``): the existing tree is read once into a dict by path, and rows go
in by the thousand, never a query per row. Importing the same files again adds nothing;
only ``prune`` deletes.

Reading the files and checking them against the tree read from the database run in a
worker thread: a large roster must not stall the bot's event loop.
"""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.audit import record
from models.org import Level, Member, Post
from models.roster_files import NO_LIMITS, RosterLimits, RosterSource
from models.roster_parse import (
    ParsedRoster,
    ProgressCallback,
    RosterProblem,
    RosterTooLarge,
    RosterValidationError,
    Where,
    parse_sources,
)
from models.roster_write import (
    ANCESTOR_COLUMNS,
    HOUSEHOLDS,
    ID_CHUNK,
    NODES,
    POSTS,
    ImportReport,
    chunks,
    write_roster,
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
        report = await write_roster(session, roster, database.nodes, database.households, progress)
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


async def _delete(session: AsyncSession, plan: _Prune) -> None:
    # Cascades would do most of this; explicit deletes keep it independent of them.
    for ids in chunks(plan.household_ids, ID_CHUNK):
        await session.execute(delete(HOUSEHOLDS).where(HOUSEHOLDS.c.id.in_(ids)))
    for ids in chunks(plan.node_ids, ID_CHUNK):
        await session.execute(delete(POSTS).where(POSTS.c.node_id.in_(ids)))
    for ids in chunks(plan.node_ids, ID_CHUNK):
        await session.execute(delete(NODES).where(NODES.c.id.in_(ids)))


def _problem(where: Where, message: str) -> RosterProblem:
    return RosterProblem(where.file, where.line, message)


def _in_file_order(
    problems: list[RosterProblem], sources: list[RosterSource]
) -> list[RosterProblem]:
    order = {source.name: index for index, source in enumerate(sources)}
    return sorted(problems, key=lambda problem: (order.get(problem.file, -1), problem.line))
