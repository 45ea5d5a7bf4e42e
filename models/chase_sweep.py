"""The ladder's sweep: every step of an open round that has fallen due is dealt with once —
fired (its messages queued, a ``chase_steps`` row per node told), superseded or skipped —
in one transaction with its ``chase_runs`` row (``models.chase``)."""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from models.base import Base, as_utc, utcnow
from models.chain import private_addresses
from models.chase import (
    ChaseRun,
    ChaseStep,
    Decision,
    Ladder,
    LadderStep,
    RunOutcome,
    open_rounds,
    plan,
    steps_done,
)
from models.lateness import (
    LateUnit,
    PostState,
    PostStatus,
    Rollup,
    late_units,
    missing_rooms,
    readers_of_late,
    roll_up,
    unit_posts,
)
from models.messages import Action, ActionKind, Param, Text, TextList, encode
from models.org import Level, Role
from models.outbox.table import enqueue_rows, outbox_row
from models.rounds import ReportRound

# Ahead of broadcasts and of news about people, behind needs and alerts.
CHASE_PRIORITY = 2
# Lines of one message; the rest are counted ("… and 12 more").
MAX_LINES = 25
# Rooms named to a unit lead; a unit rarely has more.
MAX_ROOMS = 60

# The table itself: a sweep inserts thousands of rows, with no ORM bookkeeping wanted.
CHASE_STEPS = cast(Table, ChaseStep.__table__)


@dataclass(frozen=True)
class Fired:
    round_id: int
    step: str
    nodes: int
    messages: int


@dataclass(frozen=True)
class SweepResult:
    fired: list[Fired] = field(default_factory=list)
    # (round id, step name, outcome) of the steps skipped or superseded.
    passed: list[tuple[int, str, RunOutcome]] = field(default_factory=list)

    @property
    def messages(self) -> int:
        return sum(fired.messages for fired in self.fired)


async def sweep(session: AsyncSession, ladder: Ladder, now: datetime | None = None) -> SweepResult:
    """Deal with every step due at ``now`` in every open round, once. Commits."""
    moment = now or utcnow()
    result = SweepResult()
    for report_round in await open_rounds(session, moment):
        done = await steps_done(session, report_round.id)
        for decision in plan(ladder.steps, report_round.due_at, done, moment, ladder.horizon):
            if not await _claim(session, report_round.id, decision, moment):
                continue  # another sweep dealt with it meanwhile
            if decision.outcome is not RunOutcome.fired:
                result.passed.append((report_round.id, decision.step.name, decision.outcome))
                continue
            fired = await fire(session, ladder, report_round, decision.step, moment)
            await session.execute(
                update(ChaseRun)
                .where(ChaseRun.round_id == report_round.id, ChaseRun.step == decision.step.name)
                .values(nodes=fired.nodes),
                execution_options={"synchronize_session": False},
            )
            result.fired.append(fired)
    await session.commit()
    return result


async def _claim(session: AsyncSession, round_id: int, decision: Decision, now: datetime) -> bool:
    """Record the step as dealt with; False when it already was (by another process)."""
    row = {
        "round_id": round_id,
        "step": decision.step.name,
        "outcome": decision.outcome.value,
        "due_at": decision.due_at,
        "at": now,
        "nodes": 0,
    }
    return await insert_ignoring(session, ChaseRun, [row], ["round_id", "step"]) > 0


async def insert_ignoring(
    session: AsyncSession,
    table: type[Base] | Table,
    rows: Sequence[Mapping[str, Any]],
    keys: list[str],
) -> int:
    """INSERT … ON CONFLICT DO NOTHING of ``rows``; how many went in (exact for one row)."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = builder(table).on_conflict_do_nothing(index_elements=keys)
    if len(rows) == 1:
        result = await session.execute(statement.values(**rows[0]))
    else:
        result = await session.execute(statement, list(rows))
    return int(getattr(result, "rowcount", 0) or 0)


async def fire(
    session: AsyncSession,
    ladder: Ladder,
    report_round: ReportRound,
    step: LadderStep,
    now: datetime,
) -> Fired:
    """Tell the lead (and officer) of every node of the step's level holding a late unit
    what is late below it, in the caller's transaction."""
    units = await late_units(session, report_round.id)
    if not units:
        return Fired(report_round.id, step.name, 0, 0)
    roles = (Role.lead, Role.officer) if step.officers else (Role.lead,)
    readers_of = await readers_of_late(session, report_round.id, step.level, roles)
    groups = (
        [Rollup(unit.unit_id, unit.path, [unit]) for unit in units]
        if step.level is Level.unit
        else roll_up(units, step.level)
    )
    await insert_ignoring(
        session,
        CHASE_STEPS,
        [
            {
                "round_id": report_round.id,
                "node_id": group.node_id,
                "step": step.name,
                "late_units": len(group.units),
                "missing": group.missing,
                "fired_at": now,
                "nudged_at": None,
            }
            for group in groups
        ],
        ["round_id", "node_id", "step"],
    )
    composer = Composer(step, report_round, ladder.timezone)
    if step.level is Level.unit:
        rooms = await missing_rooms(session, report_round.id)
        contents = {group.node_id: composer.unit(group.units[0], rooms) for group in groups}
        step_ids: dict[int, int] = {}
    else:
        posts = await unit_posts(session, report_round.id) if step.level is Level.building else {}
        contents = {group.node_id: composer.above(group, posts) for group in groups}
        rows = await session.execute(
            select(CHASE_STEPS.c.node_id, CHASE_STEPS.c.id).where(
                CHASE_STEPS.c.round_id == report_round.id, CHASE_STEPS.c.step == step.name
            )
        )
        step_ids = {node_id: step_id for node_id, step_id in rows}
    source = f"chase:{report_round.id}:{step.name}"
    # Queued now, whatever moment the sweep stands for, as ``enqueue`` queues.
    queued_at = utcnow()
    outbox_rows: list[dict[str, Any]] = []
    for group in groups:
        readers = readers_of.get(group.node_id, [])
        if not readers and step.level is Level.zone:
            # Nobody holds the zone's posts: the command centre stands above its grids.
            readers = private_addresses(ladder.command_centre)
        if not readers:
            continue
        step_id = step_ids.get(group.node_id)
        actions = (Action(ActionKind.nudge_late, step_id),) if step_id else ()
        # One node's message is the same for its lead and its officer: encoded once.
        payload = json.dumps(encode(contents[group.node_id], actions))
        key = f"{source}:{group.node_id}"
        outbox_rows.extend(
            outbox_row(
                reader.telegram_id,
                payload,
                member_id=reader.member_id,
                priority=CHASE_PRIORITY,
                dedupe_key=f"{key}:{reader.telegram_id}",
                source=source,
                next_attempt_at=queued_at,
                created_at=queued_at,
            )
            for reader in readers
        )
    await enqueue_rows(session, outbox_rows)
    return Fired(report_round.id, step.name, len(groups), len(outbox_rows))


class Composer:
    """The words of one step's messages, as catalog texts."""

    def __init__(self, step: LadderStep, report_round: ReportRound, timezone: str) -> None:
        self.step = step
        due = as_utc(report_round.due_at).astimezone(ZoneInfo(timezone))
        self.due = due.strftime("%H:%M")
        self.date = report_round.date.isoformat()
        minutes = step.minutes
        timing = "before" if minutes < 0 else "due" if minutes == 0 else "after"
        self.when = TextList(
            (Text(f"chase.when_{timing}", {"due": self.due, "minutes": abs(minutes)}),)
        )

    def unit(self, unit: LateUnit, rooms: Mapping[int, list[str]]) -> Text:
        unit_rooms = rooms.get(unit.unit_id, [])
        shown = ", ".join(unit_rooms[:MAX_ROOMS]) + (" …" if len(unit_rooms) > MAX_ROOMS else "")
        return Text(
            "chase.unit",
            {
                "when": self.when,
                "unit": unit.path,
                "missing": unit.missing,
                "rooms": shown,
                "date": self.date,
            },
        )

    def above(self, group: Rollup, posts: Mapping[int, tuple[PostStatus, PostStatus]]) -> Text:
        level = self.step.level
        params: dict[str, Param] = {
            "when": self.when,
            "node": group.path,
            "units": len(group.units),
            "missing": group.missing,
            "date": self.date,
        }
        if level is Level.building:
            lines = [_unit_line(unit, level, posts.get(unit.unit_id)) for unit in group.units]
        elif level is Level.grid:
            lines = [
                Text("chase.line_units", {"unit": unit.below(level), "missing": unit.missing})
                for unit in group.units
            ]
        else:
            grids = roll_up(group.units, Level.grid)
            params["grids"] = len(grids)
            lines = [_grid_line(grid) for grid in grids]
        params["lines"] = capped(lines)
        return Text(f"chase.{level.value}", params)


def capped(lines: list[Text], limit: int = MAX_LINES) -> TextList:
    if len(lines) <= limit:
        return TextList(tuple(lines))
    more = Text("chase.more", {"count": len(lines) - limit + 1})
    return TextList((*lines[: limit - 1], more))


def _unit_line(unit: LateUnit, level: Level, posts: tuple[PostStatus, PostStatus] | None) -> Text:
    params: dict[str, Param] = {"unit": unit.below(level), "missing": unit.missing}
    lead = posts[0] if posts else None
    if lead is None or lead.state is PostState.vacant:
        return Text("chase.line_unit_vacant", params)
    params["name"] = lead.name or ""
    if lead.state is PostState.unreachable:
        return Text("chase.line_unit_unreachable", params)
    return Text("chase.line_unit", params)


def _grid_line(grid: Rollup) -> Text:
    worst = max(grid.units, key=lambda unit: unit.missing)  # the first of the worst
    return Text(
        "chase.line_grid",
        {
            "grid": grid.units[0].name_at(Level.grid),
            "units": len(grid.units),
            "missing": grid.missing,
            "worst": worst.below(Level.grid),
            "worst_missing": worst.missing,
        },
    )
