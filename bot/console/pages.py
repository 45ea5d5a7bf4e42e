"""What one page shows: the panels' data for a node, read once per data version and
shared by every viewer of that node and language; closed rounds' trend points are kept,
since a closed round no longer changes."""

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from models import console
from models.base import as_utc, utcnow
from models.needs import NeedLimits
from models.org import Node
from models.rounds import ReportRound, form_of

TREND_WIDTH = 280
TREND_HEIGHT = 56


@dataclass(frozen=True)
class Panels:
    as_of: str
    report_round: ReportRound | None
    round_due: str
    late_by_min: int | None
    children: list[console.ChildProgress]
    totals: console.Totals
    households: list[console.HouseholdRow]
    answers_visible: bool
    late: list[console.LateUnitRow]
    late_count: int
    open_items: console.OpenItems
    notices: list[console.NoticeRow]
    coverage: list[console.CoverageRow]
    trend: list[console.TrendPoint]
    completeness_line: str
    timeliness_line: str


def polyline(values: list[float | None]) -> str:
    """SVG polyline points for shares 0..1, left to right; gaps skipped."""
    if not values:
        return ""
    step = TREND_WIDTH / max(len(values) - 1, 1)
    points = [
        f"{index * step:.1f},{TREND_HEIGHT - value * TREND_HEIGHT:.1f}"
        for index, value in enumerate(values)
        if value is not None
    ]
    return " ".join(points)


class PanelCache:
    """Panels by (node, locale, answers shown, data generation); a few hundred at most."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._panels: OrderedDict[tuple[object, ...], Panels] = OrderedDict()
        self._trend: dict[tuple[int, int | None], console.TrendPoint] = {}

    def get(self, key: tuple[object, ...]) -> Panels | None:
        found = self._panels.get(key)
        if found is not None:
            self._panels.move_to_end(key)
        return found

    def put(self, key: tuple[object, ...], panels: Panels) -> None:
        self._panels[key] = panels
        while len(self._panels) > self.size:
            self._panels.popitem(last=False)

    async def trend(
        self,
        session: AsyncSession,
        node: Node | None,
        now: datetime,
        current: console.TrendPoint | None,
    ) -> list[console.TrendPoint]:
        """The last rounds' points: closed rounds' from memory once read, the current
        round's from the progress panel's totals (``current``), the rest read now."""
        rounds = await console.recent_rounds(session)
        node_id = node.id if node else None
        known = {current.round_id: current} if current else {}
        wanted = [r for r in rounds if (r.id, node_id) not in self._trend and r.id not in known]
        fresh = {point.round_id: point for point in await console.trend(session, wanted, node)}
        for report_round in wanted:
            if as_utc(report_round.closes_at) <= now:
                self._trend[(report_round.id, node_id)] = fresh[report_round.id]
        fresh.update(known)
        return [self._trend.get((r.id, node_id)) or fresh[r.id] for r in rounds]


async def build_panels(
    session: AsyncSession,
    config: Config,
    node: Node | None,
    locale: str,
    answers_visible: bool,
    cache: PanelCache,
    now: datetime | None = None,
) -> Panels:
    moment = now or utcnow()
    zone = ZoneInfo(config.reports.timezone or config.i18n.timezone)
    report_round = await console.latest_round(session, moment)
    children: list[console.ChildProgress] = []
    households: list[console.HouseholdRow] = []
    late: list[console.LateUnitRow] = []
    late_count = 0
    round_due = ""
    late_by: int | None = None
    if report_round is not None:
        due = as_utc(report_round.due_at)
        round_due = due.astimezone(zone).strftime("%H:%M")
        late_by = int((moment - due).total_seconds() // 60) if moment > due else None
        if node is not None and console.child_level(node) is None:
            form = await form_of(session, report_round) if answers_visible else None
            households = await console.households(session, report_round, node, form, locale)
        else:
            children = await console.progress(session, report_round, node)
        late, late_count = await console.late_units(session, report_round, node)
    if households:
        reported = [row for row in households if row.status != "missing"]
        on_time = [
            row
            for row in reported
            if row.reported_at and report_round and row.reported_at <= as_utc(report_round.due_at)
        ]
        totals = console.Totals(len(households), len(reported), len(on_time))
    else:
        totals = console.total_of(children)
    items = await console.open_items(
        session,
        node,
        timedelta(minutes=config.alerts.escalate_after_min),
        NeedLimits(config.needs.due_hours),
        moment,
    )
    current = (
        console.TrendPoint(
            report_round.id,
            report_round.date.isoformat(),
            totals.expected,
            totals.reported,
            totals.on_time,
        )
        if report_round is not None
        else None
    )
    trend = await cache.trend(session, node, moment, current)
    return Panels(
        as_of=moment.astimezone(zone).strftime("%H:%M:%S"),
        report_round=report_round,
        round_due=round_due,
        late_by_min=late_by,
        children=children,
        totals=totals,
        households=households,
        answers_visible=answers_visible,
        late=late,
        late_count=late_count,
        open_items=items,
        notices=await console.notices(session, node),
        coverage=await console.coverage(session, node, config.console.silent_days, moment),
        trend=trend,
        completeness_line=polyline([point.completeness for point in trend]),
        timeliness_line=polyline([point.timeliness for point in trend]),
    )
