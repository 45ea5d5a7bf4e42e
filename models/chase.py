"""Chasing missing reports up the tree (下情上送): the deadline ladder.

A ladder is a list of steps relative to a round's due time, each telling the lead (and,
when it says so, the officer) of one level about what is late below them: −60 min the
unit leads with missing households, 0 the unit leads and officers, +30 the building
leads, +60 the grid leads, +120 the zone leads (``[chase]`` in the config).

Each step fires once per round: the sweep that fires it writes a ``chase_runs`` row for
(round, step) — a unique key, so a second sweep or a second process adds nothing — and a
``chase_steps`` row for each node it told, in the transaction that queues its messages.
A step missed while the bot was down fires once when it comes back, and only the latest
missed step of a level does (the earlier ones are recorded as superseded); a step missed
by more than the horizon is recorded as skipped. A unit that completes drops out of every
later step, since each step reads who is late at its own time.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, as_utc, utcnow
from models.org import Level
from models.rounds import ReportRound


class RunOutcome(StrEnum):
    fired = "fired"
    # Missed by more than the horizon while the bot was down.
    skipped = "skipped"
    # A later step of the same level was due as well: only that one fired.
    superseded = "superseded"


class ChaseRun(Base):
    """One step of one round's ladder: fired, skipped or superseded, once."""

    __tablename__ = "chase_runs"
    __table_args__ = (
        UniqueConstraint("round_id", "step", name="uq_chase_runs_round_step"),
        CheckConstraint("outcome IN ('fired', 'skipped', 'superseded')", name="outcome"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("report_rounds.id", ondelete="CASCADE"))
    # ``LadderStep.name``, e.g. "building+30".
    step: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(16))
    # When the step was due, and when the sweep dealt with it.
    due_at: Mapped[datetime] = mapped_column()
    at: Mapped[datetime] = mapped_column(default=utcnow)
    # Nodes told (fired only).
    nodes: Mapped[int] = mapped_column(Integer, default=0)
    # A fired step's messages go into the outbox after the step's own transaction, in node
    # id order, a few hundred nodes per transaction and only as fast as they are sent
    # (``models.chase_sweep.queue``): the last node whose were queued, and when the last
    # of them were.
    queued_through: Mapped[int | None] = mapped_column(Integer)
    queued_at: Mapped[datetime | None] = mapped_column()


class ChaseStep(Base):
    """A node whose lead a step told about what is late below it (its own missing
    households, for a unit), with the counts of that moment."""

    __tablename__ = "chase_steps"
    __table_args__ = (
        UniqueConstraint("round_id", "node_id", "step", name="uq_chase_steps_round_node_step"),
        Index("ix_chase_steps_node_id", "node_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("report_rounds.id", ondelete="CASCADE"))
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"))
    step: Mapped[str] = mapped_column(String(32))
    late_units: Mapped[int] = mapped_column(Integer, default=0)
    missing: Mapped[int] = mapped_column(Integer, default=0)
    fired_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set by the first press of "nudge": the late units below are reminded once per step.
    nudged_at: Mapped[datetime | None] = mapped_column()


@dataclass(frozen=True)
class LadderStep:
    """Tell the lead of each late node of ``level`` (and its officer, with ``officers``),
    ``after`` the due time (negative: before it)."""

    after: timedelta
    level: Level
    officers: bool = True

    @property
    def minutes(self) -> int:
        return int(self.after.total_seconds() // 60)

    @property
    def name(self) -> str:
        return f"{self.level.value}{self.minutes:+d}"


def default_steps() -> tuple[LadderStep, ...]:
    """PRODUCT.md §8: 09:00 the unit leads, 10:00 (due) the unit leads and officers, 10:30
    the building leads, 11:00 the grid leads, 12:00 the zone leads; officers copied."""
    return (
        LadderStep(timedelta(minutes=-60), Level.unit, officers=False),
        LadderStep(timedelta(0), Level.unit),
        LadderStep(timedelta(minutes=30), Level.building),
        LadderStep(timedelta(minutes=60), Level.grid),
        LadderStep(timedelta(minutes=120), Level.zone),
    )


@dataclass(frozen=True)
class Ladder:
    steps: tuple[LadderStep, ...] = default_steps()
    # A step missed by more than this (the bot was down) is recorded as skipped.
    horizon: timedelta = timedelta(minutes=90)
    # The county's time zone, for the due time as messages show it.
    timezone: str = "Asia/Shanghai"
    # Told at the zone step about a zone whose posts are all vacant.
    command_centre: tuple[int, ...] = ()


@dataclass(frozen=True)
class Decision:
    step: LadderStep
    due_at: datetime
    outcome: RunOutcome


def plan(
    steps: Sequence[LadderStep],
    round_due_at: datetime,
    done: set[str],
    now: datetime,
    horizon: timedelta,
) -> list[Decision]:
    """What a sweep at ``now`` does with each step of a round not yet dealt with (``done``
    holds their names): the steps not yet due are left for later; of the due steps of one
    level only the latest fires, if within the horizon."""
    due_at = as_utc(round_due_at)
    due = [step for step in steps if step.name not in done and due_at + step.after <= now]
    decisions = []
    for step in due:
        step_at = due_at + step.after
        later_same_level = any(
            other.level is step.level and other.after > step.after for other in due
        )
        if later_same_level:
            outcome = RunOutcome.superseded
        elif now - step_at > horizon:
            outcome = RunOutcome.skipped
        else:
            outcome = RunOutcome.fired
        decisions.append(Decision(step, step_at, outcome))
    return sorted(decisions, key=lambda decision: decision.step.after)


async def open_rounds(session: AsyncSession, now: datetime) -> list[ReportRound]:
    return list(
        await session.scalars(
            select(ReportRound)
            .where(ReportRound.opens_at <= now, ReportRound.closes_at > now)
            .order_by(ReportRound.opens_at)
        )
    )


async def steps_done(session: AsyncSession, round_id: int) -> set[str]:
    return set(await session.scalars(select(ChaseRun.step).where(ChaseRun.round_id == round_id)))
