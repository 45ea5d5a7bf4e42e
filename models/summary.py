"""The daily summary (PRODUCT.md §3.9): at a set time, each grid lead, zone lead (and their
officers) and the command centre get their subtree's day — the round's completion, the
units still late, alerts, open needs, notice acknowledgement — with a chart.

Collecting reads everything set-based (a handful of GROUP BYs for the whole county);
the caller draws the charts (slow: off the event loop), then
``models.summary_send.queue_summaries`` stores them and queues every message with a
``chase_summaries`` row for the day, in one transaction: a day's summary goes once, and a
bot that was down at the set time sends it once when it is back.
"""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Integer, UniqueConstraint, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from models.alerts import Alert
from models.base import Base, utcnow
from models.lateness import LateUnit, late_units
from models.needs import UNSETTLED, Need
from models.notices import Notice, NoticeRecipient
from models.org import Level, Member, Node, Post, Role
from models.posts import Recipient
from models.rounds import HouseholdReport, ReportRound, ReportStatus, round_on

CODE_PREFIX = {Level.zone: "Z", Level.grid: "G", Level.building: "B"}


class ChaseSummary(Base):
    """A day whose summary went out."""

    __tablename__ = "chase_summaries"
    __table_args__ = (UniqueConstraint("day", name="uq_chase_summaries_day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    messages: Mapped[int] = mapped_column(Integer, default=0)


@dataclass(frozen=True)
class SummaryTime:
    at: time
    timezone: str
    # The officers of grids and zones get it too.
    officers: bool = True

    def due_day(self, now: datetime) -> date:
        """The day of the latest summary due at ``now`` (today's once its time has come,
        else yesterday's)."""
        local = now.astimezone(ZoneInfo(self.timezone))
        return local.date() if local.time() >= self.at else local.date() - timedelta(days=1)

    def window(self, day: date) -> tuple[datetime, datetime]:
        """The day's alerts and notices: from midnight to the summary's time."""
        zone = ZoneInfo(self.timezone)
        return (
            datetime.combine(day, time(0), tzinfo=zone),
            datetime.combine(day, self.at, tzinfo=zone),
        )


async def summary_pending(
    session: AsyncSession, schedule: SummaryTime, now: datetime
) -> date | None:
    """The day whose summary is due and not yet sent, if any: the latest day whose summary
    time has passed, when it had a round (a bot first started today sends no summary of a
    day it did not run)."""
    day = schedule.due_day(now)
    sent = await session.scalar(select(ChaseSummary.id).where(ChaseSummary.day == day))
    if sent is not None or await round_on(session, day) is None:
        return None
    return day


@dataclass(frozen=True)
class ChartBar:
    """One node's households in the chart: reported, nobody home, missing."""

    name: str
    # What the bar is labelled when the name cannot be drawn: e.g. "G3".
    code: str
    reported: int
    nobody_home: int
    missing: int

    @property
    def total(self) -> int:
        return self.reported + self.nobody_home + self.missing


@dataclass(frozen=True)
class Reader:
    recipient: Recipient
    locale: str | None


@dataclass(frozen=True)
class NoticeAcks:
    notice_id: int
    acked: int
    recipients: int


@dataclass
class NodeSummary:
    """One subtree's day: a grid, a zone, or the county (``node_id`` None)."""

    node_id: int | None
    level: Level | None
    path: str
    reported: int = 0
    nobody_home: int = 0
    missing: int = 0
    late: list[LateUnit] = field(default_factory=list)
    alerts: int = 0
    alerts_open: int = 0
    needs_open: int = 0
    notices: dict[int, list[int]] = field(default_factory=dict)
    bars: list[ChartBar] = field(default_factory=list)
    readers: list[Reader] = field(default_factory=list)

    @property
    def key(self) -> str:
        return "county" if self.node_id is None else str(self.node_id)

    @property
    def expected(self) -> int:
        return self.reported + self.nobody_home + self.missing

    @property
    def name(self) -> str:
        return self.path.split("/")[-1] if self.path else ""

    def notice_acks(self) -> list[NoticeAcks]:
        return [
            NoticeAcks(notice_id, acked, total)
            for notice_id, (total, acked) in sorted(self.notices.items())
        ]


@dataclass(frozen=True)
class DaySummaries:
    day: date
    round_id: int | None
    summaries: list[NodeSummary]


async def collect_summaries(
    session: AsyncSession,
    schedule: SummaryTime,
    day: date,
    command_centre: Sequence[int],
) -> DaySummaries:
    """Every grid's and zone's day and the county's, with their readers (grids and zones
    nobody holds a post of are left out; the county is there when the command centre is
    configured)."""
    report_round = await round_on(session, day)
    zones: dict[int, NodeSummary] = {}
    grids: dict[int, NodeSummary] = {}
    county = NodeSummary(None, None, "")
    names = {
        node_id: (level, path)
        for node_id, level, path in await session.execute(
            select(Node.id, Node.level, Node.path).where(Node.level != Level.unit.value)
        )
    }
    for node_id, (level, path) in names.items():
        if level == Level.zone:
            zones[node_id] = NodeSummary(node_id, Level.zone, path)
        elif level == Level.grid:
            grids[node_id] = NodeSummary(node_id, Level.grid, path)

    def scopes(zone_id: int | None, grid_id: int | None) -> list[NodeSummary]:
        found = [county]
        if zone_id in zones:
            found.append(zones[zone_id])
        if grid_id in grids:
            found.append(grids[grid_id])
        return found

    if report_round is not None:
        await _completion(session, report_round, names, zones, grids, county)
        for unit in await late_units(session, report_round.id):
            for summary in scopes(unit.zone_id, unit.grid_id):
                summary.late.append(unit)
    start, end = schedule.window(day)
    alerts = await session.execute(
        select(Node.zone_id, Node.grid_id, func.count(Alert.id), func.count(Alert.acknowledged_at))
        .join(Node, Node.id == Alert.node_id)
        .where(Alert.created_at >= start, Alert.created_at < end)
        .group_by(Node.zone_id, Node.grid_id)
    )
    for zone_id, grid_id, raised, acknowledged in alerts:
        for summary in scopes(zone_id, grid_id):
            summary.alerts += raised
            summary.alerts_open += raised - acknowledged
    needs = await session.execute(
        select(Node.zone_id, Node.grid_id, func.count(Need.id))
        .join(Node, Node.id == Need.unit_node_id)
        .where(Need.status.in_([status.value for status in UNSETTLED]))
        .group_by(Node.zone_id, Node.grid_id)
    )
    for zone_id, grid_id, count in needs:
        for summary in scopes(zone_id, grid_id):
            summary.needs_open += count
    acks = await session.execute(
        select(
            NoticeRecipient.notice_id,
            Node.zone_id,
            Node.grid_id,
            func.count(NoticeRecipient.id),
            func.count(NoticeRecipient.acked_at),
        )
        .join(Notice, Notice.id == NoticeRecipient.notice_id)
        .join(Node, Node.id == NoticeRecipient.node_id)
        .where(
            Notice.wants_ack.is_(True), Notice.dispatched_at >= start, Notice.dispatched_at < end
        )
        .group_by(NoticeRecipient.notice_id, Node.zone_id, Node.grid_id)
    )
    for notice_id, zone_id, grid_id, recipients, acked in acks:
        for summary in scopes(zone_id, grid_id):
            counts = summary.notices.setdefault(notice_id, [0, 0])
            counts[0] += recipients
            counts[1] += acked
    await _readers(session, schedule, zones, grids)
    rows = await session.execute(
        select(Member.telegram_id, Member.locale).where(
            Member.telegram_id.in_(list(command_centre) or [0])
        )
    )
    locales: dict[int, str | None] = {telegram_id: locale for telegram_id, locale in rows}
    county.readers = [
        Reader(Recipient(address), locales.get(address))
        for address in dict.fromkeys(command_centre)
        if address > 0
    ]
    summaries = [
        summary for summary in (*grids.values(), *zones.values(), county) if summary.readers
    ]
    for summary in summaries:
        summary.bars.sort(key=lambda bar: bar.name)
        for index, bar in enumerate(summary.bars):
            summary.bars[index] = ChartBar(
                bar.name, f"{bar.code}{index + 1}", bar.reported, bar.nobody_home, bar.missing
            )
    return DaySummaries(day, report_round.id if report_round else None, summaries)


async def _completion(
    session: AsyncSession,
    report_round: ReportRound,
    names: Mapping[int, tuple[str, str]],
    zones: dict[int, NodeSummary],
    grids: dict[int, NodeSummary],
    county: NodeSummary,
) -> None:
    """Households reported, nobody home and missing per subtree, and the bars of each:
    a grid's buildings, a zone's grids, the county's zones."""
    rows = await session.execute(
        select(
            HouseholdReport.zone_id,
            HouseholdReport.grid_id,
            HouseholdReport.building_id,
            HouseholdReport.status,
            func.count(HouseholdReport.id),
        )
        .where(HouseholdReport.round_id == report_round.id)
        .group_by(
            HouseholdReport.zone_id,
            HouseholdReport.grid_id,
            HouseholdReport.building_id,
            HouseholdReport.status,
        )
    )
    bars: dict[tuple[str, int], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for zone_id, grid_id, building_id, status, count in rows:
        for summary in (county, zones.get(zone_id), grids.get(grid_id)):
            if summary is not None:
                _add(summary, status, count)
        bars[("county", zone_id)][status] += count
        bars[(str(zone_id), grid_id)][status] += count
        bars[(str(grid_id), building_id)][status] += count
    owners = {"county": county} | {str(key): value for key, value in (zones | grids).items()}
    for (owner, node_id), counts in bars.items():
        summary = owners.get(owner)
        if summary is None or node_id not in names:
            continue
        level, path = names[node_id]
        summary.bars.append(
            ChartBar(
                path.split("/")[-1],
                CODE_PREFIX[Level(level)],
                counts[ReportStatus.reported.value],
                counts[ReportStatus.nobody_home.value],
                counts[ReportStatus.missing.value],
            )
        )


def _add(summary: NodeSummary, status: str, count: int) -> None:
    if status == ReportStatus.reported:
        summary.reported += count
    elif status == ReportStatus.nobody_home:
        summary.nobody_home += count
    else:
        summary.missing += count


async def _readers(
    session: AsyncSession,
    schedule: SummaryTime,
    zones: dict[int, NodeSummary],
    grids: dict[int, NodeSummary],
) -> None:
    roles = [Role.lead.value, Role.officer.value] if schedule.officers else [Role.lead.value]
    rows = await session.execute(
        select(Post.node_id, Post.role, Member.telegram_id, Member.id, Member.locale)
        .join(Member, Member.id == Post.holder_id)
        .join(Node, Node.id == Post.node_id)
        .where(
            Node.level.in_([Level.zone.value, Level.grid.value]),
            Post.role.in_(roles),
            Member.reachable.is_(True),
        )
        .order_by(Post.node_id, Post.role)
    )
    for node_id, _role, telegram_id, member_id, locale in rows:
        summary = zones.get(node_id) or grids.get(node_id)
        if summary is not None:
            summary.readers.append(Reader(Recipient(telegram_id, member_id), locale))
