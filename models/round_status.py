"""``/status`` and ``/progress``: a subtree's round at a glance — done / total households and
late units per child node, open alerts and needs, and quality flags — read set-based (a
GROUP BY per panel over the ancestor-id columns), never a query per node.

Counts and statuses only: nothing here carries a household's answers.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Float, and_, case, cast, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.alerts import Alert
from models.base import as_utc, utcnow
from models.needs import UNSETTLED, Need
from models.org import LEVELS, Level, Node, under
from models.rounds import HouseholdReport, ReportHow, ReportRound, ReportStatus

NO_CHANGE = (ReportHow.no_change.value, ReportHow.unit_no_change.value)
# Flagged units listed by name; the rest are counted.
FLAGS_LISTED = 10


@dataclass(frozen=True)
class Quality:
    """The thresholds of the quality flags ([reports] quality_same_rounds, quality_fast_form_s)."""

    same_rounds: int = 7
    fast_form_s: int = 5


@dataclass(frozen=True)
class ChildStatus:
    node_id: int
    name: str
    done: int
    total: int
    # Units with households still unreported.
    late_units: int


@dataclass(frozen=True)
class FlaggedUnit:
    path: str
    # Same-answer flags: the rounds looked at; fast-form flags: forms saved too fast.
    count: int


@dataclass(frozen=True)
class SubtreeStatus:
    round_date: str
    due_at: datetime
    past_due: bool
    # None: the county.
    node: Node | None
    done: int
    total: int
    late_units: int
    children: list[ChildStatus]
    alerts_open: int
    needs_open: int
    same_units: list[FlaggedUnit]
    same_units_total: int
    fast_units: list[FlaggedUnit]
    fast_units_total: int


def child_level(node: Node | None) -> Level | None:
    """The level of the node's children; None for a unit (its households are not shown)."""
    if node is None:
        return Level.zone
    depth = Level(node.level).depth
    return LEVELS[depth + 1] if depth + 1 < len(LEVELS) else None


def _reports_under(node: Node | None) -> ColumnElement[bool]:
    if node is None:
        return literal(True)
    column: ColumnElement[int] = getattr(HouseholdReport, Level(node.level).ancestor_column)
    return column == node.id


@dataclass(frozen=True)
class Counts:
    done: int
    total: int
    late_units: int


async def node_counts(session: AsyncSession, round_id: int, node: Node | None) -> Counts:
    """Done / total households and units with households still unreported, under the node:
    what a bound group may see."""
    missing = HouseholdReport.status == ReportStatus.missing.value
    row = (
        await session.execute(
            select(
                func.count(HouseholdReport.id),
                func.coalesce(func.sum(case((missing, 0), else_=1)), 0),
                func.count(func.distinct(case((missing, HouseholdReport.unit_id)))),
            ).where(HouseholdReport.round_id == round_id, _reports_under(node))
        )
    ).one()
    total, done, late = (int(value or 0) for value in row)
    return Counts(done, total, late)


async def _children(session: AsyncSession, round_id: int, node: Node | None) -> list[ChildStatus]:
    level = child_level(node)
    if level is None:
        return []
    column: ColumnElement[int] = getattr(HouseholdReport, level.ancestor_column)
    missing = HouseholdReport.status == ReportStatus.missing.value
    totals = (
        select(
            column.label("child_id"),
            func.count(HouseholdReport.id).label("total"),
            func.coalesce(func.sum(case((missing, 0), else_=1)), 0).label("done"),
            func.count(func.distinct(case((missing, HouseholdReport.unit_id)))).label("late"),
        )
        .where(HouseholdReport.round_id == round_id, _reports_under(node))
        .group_by(column)
        .subquery()
    )
    rows = await session.execute(
        select(Node.id, Node.name, totals.c.done, totals.c.total, totals.c.late).join(
            totals, totals.c.child_id == Node.id
        )
    )
    children = [
        ChildStatus(node_id, name, int(done), int(total), int(late))
        for node_id, name, done, total, late in rows
    ]
    # The furthest behind first.
    return sorted(
        children,
        key=lambda child: (child.done / child.total if child.total else 1.0, child.name),
    )


async def _open_alerts_and_needs(session: AsyncSession, node: Node | None) -> tuple[int, int]:
    alerts = select(func.count(Alert.id)).join(Node, Node.id == Alert.node_id)
    needs = select(func.count(Need.id)).join(Node, Node.id == Need.unit_node_id)
    row = (
        await session.execute(
            select(
                alerts.where(under(node), Alert.acknowledged_at.is_(None)).scalar_subquery(),
                needs.where(
                    under(node), Need.status.in_([status.value for status in UNSETTLED])
                ).scalar_subquery(),
            )
        )
    ).one()
    return int(row[0] or 0), int(row[1] or 0)


async def _same_answer_units(
    session: AsyncSession, report_round: ReportRound, node: Node | None, rounds: int
) -> list[FlaggedUnit]:
    """Units whose every report of the last ``rounds`` rounds (up to this one) was "no
    change", with a report in each of them: answers nobody looked at again."""
    recent = (
        select(ReportRound.id)
        .where(ReportRound.date <= report_round.date)
        .order_by(ReportRound.date.desc())
        .limit(rounds)
        .subquery()
    )
    changed = case((HouseholdReport.how.in_(NO_CHANGE), 0), else_=1)
    per_unit = (
        select(HouseholdReport.unit_id.label("unit_id"))
        .where(
            HouseholdReport.round_id.in_(select(recent.c.id)),
            HouseholdReport.status != ReportStatus.missing.value,
            _reports_under(node),
        )
        .group_by(HouseholdReport.unit_id)
        .having(
            and_(
                func.count(func.distinct(HouseholdReport.round_id)) == rounds,
                func.sum(changed) == 0,
            )
        )
        .subquery()
    )
    paths = await session.scalars(
        select(Node.path).join(per_unit, per_unit.c.unit_id == Node.id).order_by(Node.path)
    )
    return [FlaggedUnit(path, rounds) for path in paths]


def _seconds_between(
    session: AsyncSession, start: ColumnElement[Any], end: ColumnElement[Any]
) -> ColumnElement[float]:
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.extract("epoch", end - start), Float)
    return cast((func.julianday(end) - func.julianday(start)) * 86400.0, Float)


async def _fast_form_units(
    session: AsyncSession, report_round: ReportRound, node: Node | None, seconds: int
) -> list[FlaggedUnit]:
    """Units with full forms saved in this round less than ``seconds`` after they were
    begun, with how many."""
    took = _seconds_between(
        session, HouseholdReport.started_at.expression, HouseholdReport.reported_at.expression
    )
    rows = await session.execute(
        select(Node.path, func.count(HouseholdReport.id))
        .join(Node, Node.id == HouseholdReport.unit_id)
        .where(
            HouseholdReport.round_id == report_round.id,
            HouseholdReport.how == ReportHow.form.value,
            HouseholdReport.started_at.is_not(None),
            HouseholdReport.reported_at.is_not(None),
            took < seconds,
            _reports_under(node),
        )
        .group_by(Node.path)
        .order_by(Node.path)
    )
    return [FlaggedUnit(path, int(count)) for path, count in rows]


async def subtree_status(
    session: AsyncSession,
    report_round: ReportRound,
    node: Node | None,
    quality: Quality,
    now: datetime | None = None,
) -> SubtreeStatus:
    counts = await node_counts(session, report_round.id, node)
    alerts_open, needs_open = await _open_alerts_and_needs(session, node)
    same = await _same_answer_units(session, report_round, node, quality.same_rounds)
    fast = await _fast_form_units(session, report_round, node, quality.fast_form_s)
    due_at = as_utc(report_round.due_at)
    return SubtreeStatus(
        round_date=report_round.date.isoformat(),
        due_at=due_at,
        past_due=(now or utcnow()) >= due_at,
        node=node,
        done=counts.done,
        total=counts.total,
        late_units=counts.late_units,
        children=await _children(session, report_round.id, node),
        alerts_open=alerts_open,
        needs_open=needs_open,
        same_units=same[:FLAGS_LISTED],
        same_units_total=len(same),
        fast_units=fast[:FLAGS_LISTED],
        fast_units_total=len(fast),
    )


async def latest_round(session: AsyncSession, now: datetime | None = None) -> ReportRound | None:
    """The round open now, else the last one opened."""
    return await session.scalar(
        select(ReportRound)
        .where(ReportRound.opens_at <= (now or utcnow()))
        .order_by(ReportRound.opens_at.desc())
        .limit(1)
    )
