"""The console's export: every household report of the round under a node."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.base import as_utc
from models.console.common import report_within
from models.forms import Form
from models.org import Household, Node
from models.reports import room_order
from models.rounds import HouseholdReport, ReportRound


@dataclass(frozen=True)
class ReportLine:
    path: str
    room: str
    status: str
    reported_at: datetime | None
    alert: bool
    answers: str


async def report_lines(
    session: AsyncSession, report_round: ReportRound, node: Node | None, form: Form, locale: str
) -> list[ReportLine]:
    """Every household report of the round under the node, answers worded in ``locale``,
    by unit path and room: what the console's export holds."""
    rows = await session.execute(
        select(
            Node.path,
            Household.room,
            HouseholdReport.status,
            HouseholdReport.reported_at,
            HouseholdReport.alert,
            HouseholdReport.answers,
        )
        .join(Household, Household.id == HouseholdReport.household_id)
        .join(Node, Node.id == HouseholdReport.unit_id)
        .where(HouseholdReport.round_id == report_round.id, report_within(node))
    )
    lines = []
    for path, room, status, reported_at, alert, answers in rows:
        worded = []
        for field_id, answer in (answers or {}).items():
            labels = form.answer_labels(field_id, answer).get(locale)
            if labels is not None and answer not in (None, [], ""):
                worded.append(f"{labels[0]}: {labels[1]}")
        lines.append(
            ReportLine(
                path,
                room,
                status,
                as_utc(reported_at) if reported_at else None,
                bool(alert),
                "; ".join(worded),
            )
        )
    return sorted(lines, key=lambda line: (line.path, room_order(line.room)))
