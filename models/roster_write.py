"""Writing a checked roster (``models.roster`` checks it first): new nodes level by level,
their posts, new households, and the people named for posts, in chunks of thousands of
rows, never a query per row."""

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, TypeVar, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.base import utcnow
from models.org import LEVELS, Household, Level, Node, Post, Role
from models.roster_parse import ParsedRoster, PlannedNode, ProgressCallback

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


async def write_roster(
    session: AsyncSession,
    roster: ParsedRoster,
    nodes: dict[str, Any],
    households: Sequence[Any],
    progress: ProgressCallback | None,
) -> ImportReport:
    """The roster's new nodes, posts and households inserted, and the people named for
    posts updated, in bulk (``nodes``: the tree as it stands, by path; ``households``: id,
    unit_id and room of those it holds). No commit."""
    report = ImportReport()
    now = utcnow()
    ancestry: dict[str, Ancestry] = {
        path: (row.zone_id, row.grid_id, row.building_id, row.unit_id)
        for path, row in nodes.items()
    }
    new_nodes: dict[Level, list[PlannedNode]] = {level: [] for level in LEVELS}
    for node in roster.nodes.values():
        if node.path not in nodes:
            new_nodes[node.level].append(node)
    rooms_by_unit: dict[int, set[str]] = {}
    for household in households:
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
    for chunk in chunks(nodes, CHUNK):
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
    for chunk in chunks(rows, CHUNK):
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
    for chunk in chunks(rows(), CHUNK):
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
        (node_id(ancestry, person.path), person.role.value): person for person in roster.people
    }
    node_ids = sorted({node_id for node_id, _ in wanted})
    changes = []
    for ids in chunks(node_ids, ID_CHUNK):
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
    for chunk in chunks(changes, CHUNK):
        await session.execute(statement, chunk)
    advance(len(roster.people))
    return len(changes)


def node_id(ancestry: dict[str, Ancestry], path: str) -> int:
    return cast(int, ancestry[path][path.count("/")])


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk
