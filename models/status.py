"""County-wide counts and the households under a node, for /status, the CLI and benchmarks."""

from datetime import datetime

from sqlalchemy import ScalarSelect, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.alerts import Alert
from models.needs import UNSETTLED, Need
from models.org import Household, Level, Member, Node, Post
from models.round_status import latest_round
from models.rounds import HouseholdReport, ReportStatus


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


async def county_status(
    session: AsyncSession, now: datetime | None = None
) -> dict[str, int | str | None]:
    """``county_counts`` and the round of the day: its date (the round open now, else the last
    one; None before the first), households reported in it, alerts nobody acknowledged yet
    and need tickets not yet confirmed — what ``python -m bot status`` prints."""
    status: dict[str, int | str | None] = dict(await county_counts(session))
    report_round = await latest_round(session, now)
    reported = (
        select(func.count(HouseholdReport.id))
        .where(
            HouseholdReport.round_id == (report_round.id if report_round else -1),
            HouseholdReport.status != ReportStatus.missing.value,
        )
        .scalar_subquery()
    )
    values = (
        await session.execute(
            select(
                reported,
                select(func.count(Alert.id))
                .where(Alert.acknowledged_at.is_(None))
                .scalar_subquery(),
                select(func.count(Need.id))
                .where(Need.status.in_([state.value for state in UNSETTLED]))
                .scalar_subquery(),
            )
        )
    ).one()
    status["round_date"] = report_round.date.isoformat() if report_round else None
    status["households_reported"] = int(values[0] or 0)
    status["alerts_open"] = int(values[1] or 0)
    status["needs_open"] = int(values[2] or 0)
    return status


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
