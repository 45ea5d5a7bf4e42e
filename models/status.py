"""County-wide counts and the households under a node, for /status, the CLI and benchmarks."""

from sqlalchemy import ScalarSelect, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.org import Household, Level, Member, Node, Post


async def county_counts(session: AsyncSession) -> dict[str, int]:
    """communities, zones, grids, buildings, units, households, posts, posts_filled,
    members, in that order; one round trip."""

    def count_nodes(level: Level) -> ScalarSelect[int]:
        return select(func.count()).where(Node.level == level.value).scalar_subquery()

    query = select(
        select(func.count(func.distinct(Node.community)))
        .where(Node.level == Level.grid.value)
        .scalar_subquery(),
        count_nodes(Level.zone),
        count_nodes(Level.grid),
        count_nodes(Level.building),
        count_nodes(Level.unit),
        select(func.count()).select_from(Household).scalar_subquery(),
        select(func.count()).select_from(Post).scalar_subquery(),
        select(func.count()).where(Post.holder_id.is_not(None)).scalar_subquery(),
        select(func.count()).select_from(Member).scalar_subquery(),
    )
    names = (
        "communities",
        "zones",
        "grids",
        "buildings",
        "units",
        "households",
        "posts",
        "posts_filled",
        "members",
    )
    values = (await session.execute(query)).one()
    return dict(zip(names, (int(value) for value in values), strict=True))


async def households_under(session: AsyncSession, node_id: int) -> list[tuple[int, str]]:
    """(id, room) of every household under the node, in import order; [] for no such node.

    Households carry their ancestors' ids, so this is one equality on an indexed column.
    """
    level = await session.scalar(select(Node.level).where(Node.id == node_id))
    if level is None:
        return []
    column = getattr(Household, Level(level).ancestor_column)
    query = select(Household.id, Household.room).where(column == node_id).order_by(Household.id)
    return [(household_id, room) for household_id, room in await session.execute(query)]
