"""Households reported per child node in the round, their totals, a unit's own
households, and the trend of completeness and timeliness over recent rounds."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.base import as_utc
from models.console.common import band, child_level, report_within
from models.forms import Form
from models.org import Household, Node
from models.reports import room_order
from models.rounds import HouseholdReport, ReportRound, ReportStatus

# --- progress -------------------------------------------------------------------------


class Shares:
    """The shares of a count of households: reported of those expected, and on time of
    those reported (``ChildProgress`` and ``Totals`` declare the counts)."""

    expected: int
    reported: int
    on_time: int

    @property
    def share(self) -> float | None:
        return self.reported / self.expected if self.expected else None

    @property
    def on_time_share(self) -> float | None:
        return self.on_time / self.reported if self.reported else None


@dataclass(frozen=True)
class ChildProgress(Shares):
    node_id: int
    name: str
    level: str
    expected: int
    reported: int
    on_time: int

    @property
    def band(self) -> str:
        return band(self.share)


def _counts(due_at: Any) -> tuple[Any, Any, Any]:
    """Households expected, reported and reported by ``due_at`` (a round's due time, or its
    column when the query spans rounds), as aggregate columns."""
    reported = HouseholdReport.status != ReportStatus.missing.value
    on_time = and_(reported, HouseholdReport.reported_at <= due_at)
    return (
        func.count(HouseholdReport.id),
        func.coalesce(func.sum(case((reported, 1), else_=0)), 0),
        func.coalesce(func.sum(case((on_time, 1), else_=0)), 0),
    )


async def progress(
    session: AsyncSession, report_round: ReportRound, node: Node | None
) -> list[ChildProgress]:
    """Reported / expected households per child node of ``node`` in the round ("nobody
    home" counts as reported; the expected households are those frozen at the round's
    opening), worst share first. Empty below a unit: see ``households``."""
    level = child_level(node)
    if level is None:
        return []
    column: ColumnElement[int] = getattr(HouseholdReport, level.ancestor_column)
    totals = (
        select(
            column.label("child_id"),
            *(
                c.label(n)
                for c, n in zip(
                    _counts(report_round.due_at), ("expected", "reported", "on_time"), strict=True
                )
            ),
        )
        .where(HouseholdReport.round_id == report_round.id, report_within(node))
        .group_by(column)
        .subquery()
    )
    rows = await session.execute(
        select(
            Node.id,
            Node.name,
            Node.level,
            totals.c.expected,
            totals.c.reported,
            totals.c.on_time,
        ).join(totals, totals.c.child_id == Node.id)
    )
    children = [
        ChildProgress(node_id, name, node_level, int(expected), int(reported), int(on_time))
        for node_id, name, node_level, expected, reported, on_time in rows
    ]
    return sorted(
        children, key=lambda child: (child.share if child.share is not None else 2, child.name)
    )


@dataclass(frozen=True)
class Totals(Shares):
    expected: int
    reported: int
    on_time: int


def total_of(children: Sequence[ChildProgress]) -> Totals:
    return Totals(
        sum(child.expected for child in children),
        sum(child.reported for child in children),
        sum(child.on_time for child in children),
    )


@dataclass(frozen=True)
class HouseholdRow:
    household_id: int
    room: str
    status: str
    alert: bool
    reported_at: datetime | None
    # (field label, answer label) per answer, in the reader's language; empty when hidden.
    answers: list[tuple[str, str]] = field(default_factory=list)


async def households(
    session: AsyncSession,
    report_round: ReportRound,
    unit: Node,
    form: Form | None,
    locale: str,
) -> list[HouseholdRow]:
    """A unit's households in the round, with their answers in ``locale`` when ``form``
    is given (the caller passes it only to a viewer chat would show them to)."""
    rows = await session.execute(
        select(
            Household.id,
            Household.room,
            HouseholdReport.status,
            HouseholdReport.alert,
            HouseholdReport.reported_at,
            HouseholdReport.answers,
        )
        .join(HouseholdReport, HouseholdReport.household_id == Household.id)
        .where(HouseholdReport.round_id == report_round.id, HouseholdReport.unit_id == unit.id)
    )
    found = []
    for household_id, room, status, alert, reported_at, answers in rows:
        shown: list[tuple[str, str]] = []
        if form is not None and answers:
            for field_id, answer in answers.items():
                labels = form.answer_labels(field_id, answer).get(locale)
                if labels is not None and answer not in (None, [], ""):
                    shown.append(labels)
        found.append(
            HouseholdRow(
                household_id,
                room,
                status,
                bool(alert),
                as_utc(reported_at) if reported_at else None,
                shown,
            )
        )
    return sorted(found, key=lambda row: room_order(row.room))


# --- trend ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TrendPoint:
    round_id: int
    day: str
    expected: int
    reported: int
    on_time: int

    @property
    def completeness(self) -> float | None:
        return self.reported / self.expected if self.expected else None

    @property
    def timeliness(self) -> float | None:
        return self.on_time / self.expected if self.expected else None


async def recent_rounds(session: AsyncSession, count: int = 14) -> list[ReportRound]:
    found = await session.scalars(
        select(ReportRound).order_by(ReportRound.date.desc()).limit(count)
    )
    return sorted(found, key=lambda report_round: report_round.date)


async def trend(
    session: AsyncSession, rounds: Sequence[ReportRound], node: Node | None
) -> list[TrendPoint]:
    """Completeness and timeliness (reported by the due time, of those expected) of each
    of ``rounds`` under the node: one GROUP BY over the rounds given."""
    if not rounds:
        return []
    by_id = {report_round.id: report_round for report_round in rounds}
    rows = await session.execute(
        select(HouseholdReport.round_id, *_counts(ReportRound.due_at))
        .join(ReportRound, ReportRound.id == HouseholdReport.round_id)
        .where(HouseholdReport.round_id.in_(list(by_id)), report_within(node))
        .group_by(HouseholdReport.round_id)
    )
    points = {
        round_id: TrendPoint(
            round_id, by_id[round_id].date.isoformat(), int(expected), int(done), int(on_time)
        )
        for round_id, expected, done, on_time in rows
    }
    return [points.get(r.id, TrendPoint(r.id, r.date.isoformat(), 0, 0, 0)) for r in rounds]
