""" "Nudge" on a ladder step's message: the leads and officers of the units still late below
the step's node are reminded again, once per step, whoever presses it and however often.
Every press is re-authorised from the database."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.access import scope_of
from models.audit import record
from models.base import as_utc, utcnow
from models.chase import ChaseStep
from models.chase_sweep import CHASE_PRIORITY
from models.chase_texts import MAX_ROOMS
from models.lateness import holders_at_nodes, late_units, missing_rooms
from models.messages import Term, Text
from models.org import Level, Member, Node, Role
from models.outbox.table import OutgoingMessage, enqueue
from models.reports import LARGEST_ID
from models.rounds import ReportRound, is_open


class NudgeOutcome(StrEnum):
    nudged = "nudged"
    # Someone pressed it before for this step.
    already = "already"
    # Every unit below has reported since.
    nothing_late = "nothing_late"
    round_closed = "round_closed"
    # Not the presser's subtree, or no such step: the same answer.
    refused = "refused"


@dataclass(frozen=True)
class Nudge:
    outcome: NudgeOutcome
    units: int = 0
    people: int = 0


async def nudge(
    session: AsyncSession,
    step_id: int,
    telegram_id: int,
    admin_ids: list[int] | tuple[int, ...],
    timezone: str,
    now: datetime | None = None,
) -> Nudge:
    """Remind the units still late below the step's node, when the presser sees that node
    and nobody nudged for this step yet. Commits."""
    moment = now or utcnow()
    row = (
        (
            await session.execute(
                select(ChaseStep, ReportRound, Node)
                .join(ReportRound, ReportRound.id == ChaseStep.round_id)
                .join(Node, Node.id == ChaseStep.node_id)
                .where(ChaseStep.id == step_id)
            )
        ).first()
        if 0 < step_id <= LARGEST_ID
        else None
    )
    if row is None:
        return Nudge(NudgeOutcome.refused)
    step, report_round, node = row
    scope = await scope_of(session, telegram_id, admin_ids)
    if not scope.sees(node) or node.level == Level.unit:
        return Nudge(NudgeOutcome.refused)
    if not is_open(report_round, moment):
        return Nudge(NudgeOutcome.round_closed)
    level = Level(node.level)
    units = await late_units(session, report_round.id, level, node.id)
    if not units:
        return Nudge(NudgeOutcome.nothing_late)
    claimed = await session.execute(
        update(ChaseStep)
        .where(ChaseStep.id == step.id, ChaseStep.nudged_at.is_(None))
        .values(nudged_at=moment),
        execution_options={"synchronize_session": False},
    )
    if not getattr(claimed, "rowcount", 0):
        await session.rollback()
        return Nudge(NudgeOutcome.already)
    rooms = await missing_rooms(session, report_round.id, level, node.id)
    holders = await holders_at_nodes(
        session, [unit.unit_id for unit in units], (Role.lead, Role.officer)
    )
    by = await session.scalar(select(Member.name).where(Member.telegram_id == telegram_id))
    due = as_utc(report_round.due_at).astimezone(ZoneInfo(timezone)).strftime("%H:%M")
    messages: list[OutgoingMessage] = []
    for unit in units:
        unit_rooms = rooms.get(unit.unit_id, [])
        content = Text(
            "chase.nudged",
            {
                "by": by if by else Term("chase.command_centre"),
                "node": node.path,
                "unit": unit.path,
                "missing": unit.missing,
                "rooms": ", ".join(unit_rooms[:MAX_ROOMS]),
                "due": due,
            },
        )
        messages.extend(
            OutgoingMessage(
                chat_id=holder.recipient.telegram_id,
                member_id=holder.recipient.member_id,
                content=content,
                dedupe_key=f"chase.nudge:{step.id}:{unit.unit_id}:{holder.recipient.telegram_id}",
                source=f"chase.nudge:{step.id}",
                priority=CHASE_PRIORITY,
            )
            for holder in holders.get(unit.unit_id, [])
            if holder.reachable
        )
    queued = await enqueue(session, messages)
    record(session, "chase.nudged", telegram_id, step_id=step.id, node_id=node.id, units=len(units))
    await session.commit()
    return Nudge(NudgeOutcome.nudged, len(units), queued)
