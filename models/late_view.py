"""``/late``: who is holding a deadline under a node — its children with their late units
and households, down to the late units themselves with their rooms and the state of their
lead and officer posts (held, vacant, or held by someone the bot cannot reach)."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.access import Scope
from models.base import as_utc
from models.lateness import (
    LateUnit,
    PostStatus,
    late_units,
    missing_rooms,
    roll_up,
    unit_posts,
)
from models.org import LEVELS, Level, Node
from models.rounds import ReportRound

# Units listed one by one when there are at most this many under the node.
UNITS_LISTED = 12


@dataclass(frozen=True)
class LateChild:
    node_id: int
    name: str
    units: int
    missing: int


@dataclass(frozen=True)
class LateUnitLine:
    unit: LateUnit
    # The unit's path below the node shown.
    label: str
    rooms: list[str]
    lead: PostStatus
    officer: PostStatus


@dataclass(frozen=True)
class LateView:
    round_date: str
    due_at: datetime
    # None: the county (the command centre).
    node: Node | None
    units: int
    missing: int
    children: list[LateChild]
    lines: list[LateUnitLine]


async def late_view(
    session: AsyncSession, report_round: ReportRound, node: Node | None
) -> LateView:
    """The late units under ``node`` (the county for None) in the round: its children
    with counts, and the units themselves once few enough or the node is a building. The
    caller checks the reader's scope."""
    level = Level(node.level) if node is not None else None
    node_id = node.id if node is not None else None
    units = await late_units(session, report_round.id, level, node_id)
    below = LEVELS[level.depth + 1] if level is not None and level is not Level.unit else None
    if level is None:
        below = Level.zone
    children = (
        [
            LateChild(group.node_id, group.path.split("/")[-1], len(group.units), group.missing)
            for group in roll_up(units, below)
        ]
        if below is not None
        else []
    )
    lines: list[LateUnitLine] = []
    if units and (len(units) <= UNITS_LISTED or below in (Level.unit, None)):
        rooms = await missing_rooms(session, report_round.id, level, node_id)
        posts = await unit_posts(session, report_round.id, level, node_id)
        for unit in units:
            lead, officer = posts[unit.unit_id]
            label = unit.below(level) if level is not None else unit.path
            lines.append(
                LateUnitLine(unit, label or unit.path, rooms.get(unit.unit_id, []), lead, officer)
            )
    return LateView(
        round_date=report_round.date.isoformat(),
        due_at=as_utc(report_round.due_at),
        node=node,
        units=len(units),
        missing=sum(unit.missing for unit in units),
        children=children,
        lines=lines,
    )


async def roots_of(session: AsyncSession, scope: Scope) -> list[Node]:
    """The nodes of the member's posts, highest first: where ``/late`` without a path
    looks."""
    ids = [node_id for node_id, _level in scope.roots]
    if not ids:
        return []
    nodes = list(await session.scalars(select(Node).where(Node.id.in_(ids))))
    # A post inside another post's subtree adds nothing.
    kept = [
        node
        for node in nodes
        if not any(other.id != node.id and _inside(node, other) for other in nodes)
    ]
    return sorted(kept, key=lambda node: (Level(node.level).depth, node.path))


def _inside(node: Node, other: Node) -> bool:
    column = Level(other.level).ancestor_column
    return bool(getattr(node, column) == other.id)
