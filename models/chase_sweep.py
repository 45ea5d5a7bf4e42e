"""The ladder's sweep: every step of an open round that has fallen due is dealt with once —
fired (its messages queued, a ``chase_steps`` row per node told), superseded or skipped —
in one transaction with its ``chase_runs`` row (``models.chase``)."""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import orjson
from sqlalchemy import Table, distinct, func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

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
from models.chase_texts import Composer
from models.lateness import (
    PostStatus,
    Rollup,
    late_units,
    late_units_with_rooms,
    missing_in,
    readers_at,
    roll_up,
    unit_leads,
)
from models.messages import Action, ActionKind, encode
from models.org import Level, Role
from models.outbox.table import OUTBOX, OutboxStatus, enqueue_rows, outbox_row
from models.rounds import HouseholdReport, ReportRound

# Ahead of broadcasts and of news about people, behind needs and alerts.
CHASE_PRIORITY = 2
# Nodes whose messages one transaction queues (a unit step at the seed county's size is
# 2,899 nodes): short enough that reports being saved meanwhile wait little for the writer.
QUEUE_CHUNK = 500
# A step's messages waiting in the outbox beyond which a sweep queues no more of them: the
# next sweep goes on. At Telegram's 30 messages/s this lasts longer than the 30 s between
# sweeps, so the sender never runs dry, and no sweep writes a whole county's at once.
AHEAD = 1000

logger = logging.getLogger(__name__)

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


async def sweep(
    session: AsyncSession,
    ladder: Ladder,
    now: datetime | None = None,
    *,
    chunk: int = QUEUE_CHUNK,
) -> SweepResult:
    """Deal with every step due at ``now`` in every open round, once, then queue the
    messages of the steps fired (and of any a crash left unqueued). Commits.

    Recording a step — its ``chase_runs`` row and a ``chase_steps`` row per node told, with
    the counts of that moment — is one transaction: that is what makes it fire once. Its
    messages follow in transactions of at most ``chunk`` nodes each, so that no sweep holds
    the database's writer for long; a message's dedupe key holds it to once per reader, and
    the run's ``queued_at``, set with the last of them, tells a later sweep that nothing
    is left to queue."""
    moment = now or utcnow()
    passed: list[tuple[int, str, RunOutcome]] = []
    recorded: dict[tuple[int, str], int] = {}
    for report_round in await open_rounds(session, moment):
        done = await steps_done(session, report_round.id)
        for decision in plan(ladder.steps, report_round.due_at, done, moment, ladder.horizon):
            if not await _claim(session, report_round.id, decision, moment):
                continue  # another sweep dealt with it meanwhile
            if decision.outcome is not RunOutcome.fired:
                passed.append((report_round.id, decision.step.name, decision.outcome))
                continue
            recorded[(report_round.id, decision.step.name)] = await record(
                session, report_round, decision.step, moment
            )
    await session.commit()
    fired = []
    for run, report_round in await _unqueued(session):
        key = (run.round_id, run.step)
        if key not in recorded and await _waiting(session, run) >= AHEAD:
            continue  # enough of its messages wait to be sent
        step = _still_due(ladder, run, report_round, moment)
        if step is None:
            await _queued(session, run)
        messages = (
            0 if step is None else await queue(session, ladder, step, report_round, run, chunk)
        )
        if key in recorded:
            fired.append(Fired(run.round_id, run.step, recorded[key], messages))
    return SweepResult(fired, passed)


async def _claim(session: AsyncSession, round_id: int, decision: Decision, now: datetime) -> bool:
    """Record the step as dealt with; False when it already was (by another process)."""
    row = {
        "round_id": round_id,
        "step": decision.step.name,
        "outcome": decision.outcome.value,
        "due_at": decision.due_at,
        "at": now,
        "nodes": 0,
        "queued_at": None if decision.outcome is RunOutcome.fired else now,
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


@dataclass(frozen=True)
class Told:
    """The next nodes past a run's cursor that its step told, each with its units still
    late (a unit that completed since the step was recorded is left out), and, above the
    unit level, their ``chase_steps`` ids for the nudge button."""

    groups: list[Rollup]
    step_ids: dict[int, int]
    # The last node id read, which the run's cursor may reach even when no group is left
    # that far (its units have all reported), and whether more nodes wait beyond it.
    through: int | None
    complete: bool
    # At the unit level: each unit's missing rooms, read with its count.
    rooms: Mapping[int, list[str]] = field(default_factory=dict)


async def record(
    session: AsyncSession, report_round: ReportRound, step: LadderStep, now: datetime
) -> int:
    """Write a ``chase_steps`` row per node of the step's level holding a late unit, with
    its late units and missing households at this moment, in the caller's transaction;
    how many nodes. One INSERT … SELECT grouping the round's missing reports by the node
    (over the partial index of the missing ones): no row passes through Python, however
    large the county."""
    node: ColumnElement[int] = getattr(HouseholdReport, step.level.ancestor_column)
    counts = (
        select(
            literal(report_round.id).label("round_id"),
            node.label("node_id"),
            literal(step.name).label("step"),
            func.count(distinct(HouseholdReport.unit_id)).label("late_units"),
            func.count().label("missing"),
            literal(now, CHASE_STEPS.c.fired_at.type).label("fired_at"),
        )
        .where(missing_in(report_round.id))
        .group_by(node)
    )
    dialect = session.get_bind().dialect.name
    builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
    result = await session.execute(
        builder(CHASE_STEPS)
        .from_select(["round_id", "node_id", "step", "late_units", "missing", "fired_at"], counts)
        .on_conflict_do_nothing(index_elements=["round_id", "node_id", "step"])
    )
    nodes = int(getattr(result, "rowcount", 0) or 0)
    await session.execute(
        update(ChaseRun)
        .where(ChaseRun.round_id == report_round.id, ChaseRun.step == step.name)
        .values(nodes=nodes),
        execution_options={"synchronize_session": False},
    )
    return nodes


async def _unqueued(session: AsyncSession) -> list[tuple[ChaseRun, ReportRound]]:
    """Fired steps whose messages are not all in the outbox yet, oldest first."""
    rows = await session.execute(
        select(ChaseRun, ReportRound)
        .join(ReportRound, ReportRound.id == ChaseRun.round_id)
        .where(ChaseRun.outcome == RunOutcome.fired.value, ChaseRun.queued_at.is_(None))
        .order_by(ChaseRun.due_at, ChaseRun.id)
        # The cursor as committed, not as an earlier sweep in this session loaded it.
        .execution_options(populate_existing=True)
    )
    return [(run, report_round) for run, report_round in rows]


def _still_due(
    ladder: Ladder, run: ChaseRun, report_round: ReportRound, now: datetime
) -> LadderStep | None:
    """The step of a run whose messages are not all queued; None when they would come too
    late to mean anything: the round has closed, the horizon has passed, or the ladder no
    longer has the step."""
    step = next((step for step in ladder.steps if step.name == run.step), None)
    open_now = as_utc(report_round.opens_at) <= now < as_utc(report_round.closes_at)
    if step is None or not open_now or now - as_utc(run.due_at) > ladder.horizon:
        logger.warning("chase step %s of round %d: messages dropped", run.step, run.round_id)
        return None
    return step


async def _next_nodes(
    session: AsyncSession, step: LadderStep, round_id: int, after: int | None, limit: int
) -> Told:
    """The next ``limit`` nodes past ``after`` that the step told, with their late units."""
    rows = await session.execute(
        select(CHASE_STEPS.c.node_id, CHASE_STEPS.c.id)
        .where(
            CHASE_STEPS.c.round_id == round_id,
            CHASE_STEPS.c.step == step.name,
            CHASE_STEPS.c.node_id > (after or 0),
        )
        .order_by(CHASE_STEPS.c.node_id)
        .limit(limit + 1)
    )
    step_ids = {node_id: step_id for node_id, step_id in rows}
    told = sorted(step_ids)[:limit]
    through, complete = (told[-1] if told else after), len(step_ids) <= limit
    if step.level is Level.unit:
        units, rooms = await late_units_with_rooms(session, round_id, told)
        groups = [Rollup(unit.unit_id, unit.path, [unit]) for unit in units]
        return Told(sorted(groups, key=_node), {}, through, complete, rooms)
    units = await late_units(session, round_id, step.level, among=told) if told else []
    return Told(sorted(roll_up(units, step.level), key=_node), step_ids, through, complete)


def _node(group: Rollup) -> int:
    return group.node_id


async def queue(
    session: AsyncSession,
    ladder: Ladder,
    step: LadderStep,
    report_round: ReportRound,
    run: ChaseRun,
    chunk: int,
) -> int:
    """Queue the messages of a recorded step, in node order from the run's cursor,
    ``chunk`` nodes per transaction (each chunk's late units read as it comes), until
    ``AHEAD`` of them wait in the outbox or all are queued; returns how many. Each node's
    message is composed and serialized once for its lead and officer."""
    writer = _Writer(ladder, step, report_round, _source(run))
    through, queued = run.queued_through, 0
    while True:
        told = await _next_nodes(session, step, run.round_id, through, chunk)
        queued += await enqueue_rows(session, await writer.rows(session, told))
        through = told.through
        await _advance(session, run, through, done=told.complete)
        if told.complete or await _waiting(session, run) >= AHEAD:
            return queued  # all queued, or the next sweep goes on from the cursor


async def _advance(session: AsyncSession, run: ChaseRun, through: int | None, done: bool) -> None:
    """Move the run's cursor (and say when all its messages are queued), committing the
    messages queued with it."""
    await session.execute(
        update(ChaseRun)
        .where(ChaseRun.id == run.id)
        .values(queued_through=through, queued_at=utcnow() if done else None),
        execution_options={"synchronize_session": False},
    )
    await session.commit()


def _source(run: ChaseRun) -> str:
    return f"chase:{run.round_id}:{run.step}"


async def _waiting(session: AsyncSession, run: ChaseRun) -> int:
    """The step's messages in the outbox not yet sent."""
    count = await session.scalar(
        select(func.count()).where(
            OUTBOX.c.source == _source(run), OUTBOX.c.status == OutboxStatus.pending.value
        )
    )
    return int(count or 0)


async def _queued(session: AsyncSession, run: ChaseRun) -> None:
    await session.execute(
        update(ChaseRun).where(ChaseRun.id == run.id).values(queued_at=utcnow()),
        execution_options={"synchronize_session": False},
    )
    await session.commit()


class _Writer:
    """The outbox rows of a step's nodes, a chunk at a time: who reads each node's message
    (read for the chunk's nodes only) and the message, composed and serialized once for
    its lead and officer."""

    def __init__(
        self, ladder: Ladder, step: LadderStep, report_round: ReportRound, source: str
    ) -> None:
        self.ladder = ladder
        self.source = source
        self.step = step
        self.composer = Composer(step, report_round, ladder.timezone)

    async def rows(self, session: AsyncSession, told: Told) -> list[dict[str, Any]]:
        step, groups = self.step, told.groups
        roles = (Role.lead, Role.officer) if step.officers else (Role.lead,)
        readers_of = await readers_at(session, [group.node_id for group in groups], roles)
        leads: Mapping[int, PostStatus] = {}
        if step.level is Level.building:
            unit_ids = [unit.unit_id for group in groups for unit in group.units]
            leads = await unit_leads(session, unit_ids)
        # Queued now, whatever moment the sweep stands for, as ``enqueue`` queues.
        queued_at = utcnow()
        rows: list[dict[str, Any]] = []
        for group in groups:
            readers = readers_of.get(group.node_id, [])
            if not readers and step.level is Level.zone:
                # Nobody holds the zone's posts: the command centre stands above its grids.
                readers = private_addresses(self.ladder.command_centre)
            if not readers:
                continue
            if step.level is Level.unit:
                content = self.composer.unit(group.units[0], told.rooms)
            else:
                content = self.composer.above(group, leads)
            step_id = told.step_ids.get(group.node_id)
            actions = (Action(ActionKind.nudge_late, step_id),) if step_id else ()
            # The same JSON as json.dumps' once decoded, in a fraction of its time.
            payload = orjson.dumps(encode(content, actions)).decode()
            key = f"{self.source}:{group.node_id}"
            rows.extend(
                outbox_row(
                    reader.telegram_id,
                    payload,
                    member_id=reader.member_id,
                    priority=CHASE_PRIORITY,
                    dedupe_key=f"{key}:{reader.telegram_id}",
                    source=self.source,
                    next_attempt_at=queued_at,
                    created_at=queued_at,
                )
                for reader in readers
            )
        return rows
