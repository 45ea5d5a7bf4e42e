"""What every console panel shares: the colour bands of a share reported, the age
buckets of open items, the level below a node, the household reports under a node, the
breadcrumbs and node look-ups pages move between, and the round the console shows."""

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.base import utcnow
from models.org import LEVELS, Level, Node
from models.rounds import HouseholdReport, ReportRound

# Colour bands of a share of households reported (PRODUCT: ≥ 90 % green, ≥ 60 % amber).
GREEN_FROM = 0.9
AMBER_FROM = 0.6
# Age buckets of open alerts and needs: upper bounds in hours, the last one open-ended.
AGE_BUCKETS: tuple[tuple[str, float | None], ...] = (
    ("lt1h", 1),
    ("1to4h", 4),
    ("4to24h", 24),
    ("older", None),
)


def band(share: float | None) -> str:
    if share is None:
        return "none"
    if share >= GREEN_FROM:
        return "green"
    return "amber" if share >= AMBER_FROM else "red"


def age_bucket(age: timedelta) -> str:
    hours = age.total_seconds() / 3600
    for name, upper in AGE_BUCKETS:
        if upper is None or hours < upper:
            return name
    return AGE_BUCKETS[-1][0]


def child_level(node: Node | None) -> Level | None:
    """The level of the node's children; None below a unit (its households)."""
    if node is None:
        return Level.zone
    depth = Level(node.level).depth
    return LEVELS[depth + 1] if depth + 1 < len(LEVELS) else None


def report_within(node: Node | None) -> ColumnElement[bool]:
    if node is None:
        return literal(True)
    column: ColumnElement[int] = getattr(HouseholdReport, Level(node.level).ancestor_column)
    return column == node.id


async def breadcrumbs(session: AsyncSession, node: Node | None) -> list[Node]:
    """The node's ancestors from the zone down, the node itself last."""
    if node is None:
        return []
    ids = [getattr(node, level.ancestor_column) for level in LEVELS]
    found = {
        ancestor.id: ancestor
        for ancestor in await session.scalars(
            select(Node).where(Node.id.in_([i for i in ids if i is not None]))
        )
    }
    return [found[i] for i in ids if i is not None and i in found]


async def latest_round(session: AsyncSession, now: datetime | None = None) -> ReportRound | None:
    """The round open now, else the last one opened."""
    moment = now or utcnow()
    return await session.scalar(
        select(ReportRound)
        .where(ReportRound.opens_at <= moment)
        .order_by(ReportRound.opens_at.desc())
        .limit(1)
    )


async def nodes_by_id(session: AsyncSession, ids: Sequence[int]) -> list[Node]:
    return list(
        await session.scalars(select(Node).where(Node.id.in_(list(ids))).order_by(Node.path))
    )
