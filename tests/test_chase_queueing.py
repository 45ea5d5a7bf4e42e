"""A fired step's messages go into the outbox after the step is recorded, a chunk of nodes
per transaction and only as fast as they are sent: each reader still gets exactly one, a
unit that completes before its turn is not chased, and a sweep that stops between
recording a step and queueing its messages is finished by the next one, once."""

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

import models.chase_sweep as chase_sweep
from models.chase import ChaseRun, ChaseStep
from models.chase_sweep import sweep
from models.forms import Form
from models.lateness import late_units, late_units_with_rooms, missing_rooms
from models.org import Level, Node
from models.outbox.table import OutboxMessage, OutboxStatus
from models.rounds import HouseholdReport, ReportStatus
from tests.test_chase import (
    LADDER,
    UNIT_1,
    UNIT_2,
    UNIT_3,
    at,
    county,
    form,
    report,
    report_all_but,
)

__all__ = ["form"]


async def told(session: AsyncSession, step: str) -> list[int]:
    rows = await session.execute(
        select(OutboxMessage.chat_id)
        .where(OutboxMessage.source.like(f"chase:%:{step}"))
        .order_by(OutboxMessage.id)
    )
    return list(rows.scalars())


async def all_sent(session: AsyncSession) -> None:
    """What the sender would do meanwhile."""
    await session.execute(update(OutboxMessage).values(status=OutboxStatus.sent.value))
    await session.commit()


async def run_of(session: AsyncSession, step: str) -> ChaseRun:
    run = await session.scalar(
        select(ChaseRun).where(ChaseRun.step == step).execution_options(populate_existing=True)
    )
    assert run is not None
    return run


async def test_a_step_is_queued_as_fast_as_it_is_sent_once_per_reader(
    session: AsyncSession, form: Form, monkeypatch: pytest.MonkeyPatch
) -> None:
    report_round = await county(session, form)
    await report_all_but(session, report_round.id, UNIT_1, UNIT_2, UNIT_3)
    # One unit per transaction; no more once one message waits.
    monkeypatch.setattr(chase_sweep, "AHEAD", 1)
    await sweep(session, LADDER, at(9, 59))  # unit-60 fired, its messages queued
    await all_sent(session)
    first = await sweep(session, LADDER, at(10), chunk=1)
    assert [(fired.step, fired.nodes, fired.messages) for fired in first.fired] == [
        ("unit+0", 3, 2)
    ]
    assert await told(session, "unit+0") == [11, 12]  # 1单元's lead and officer
    assert (await run_of(session, "unit+0")).queued_at is None
    # Nothing sent yet: the next sweep adds nothing.
    await sweep(session, LADDER, at(10, 1), chunk=1)
    assert await told(session, "unit+0") == [11, 12]
    # 1号楼/2单元 completes before its turn: its lead is not chased.
    await report(session, report_round.id, UNIT_2)
    await all_sent(session)
    await sweep(session, LADDER, at(10, 2), chunk=1)
    await all_sent(session)
    await sweep(session, LADDER, at(10, 3), chunk=1)
    # 2号楼/1单元's posts are vacant: nobody to tell, and the step is done.
    assert await told(session, "unit+0") == [11, 12]
    run = await run_of(session, "unit+0")
    assert run.queued_at is not None and run.nodes == 3
    await sweep(session, LADDER, at(10, 4), chunk=1)
    assert await told(session, "unit+0") == [11, 12]
    # Every node the step told is on record, with the counts of its moment.
    steps = await session.scalars(select(ChaseStep.missing).where(ChaseStep.step == "unit+0"))
    assert len(list(steps)) == 3


async def test_a_sweep_stopped_after_recording_a_step_is_finished_once_by_the_next(
    session: AsyncSession, form: Form, monkeypatch: pytest.MonkeyPatch
) -> None:
    report_round = await county(session, form)
    await report_all_but(session, report_round.id, UNIT_1, UNIT_2)
    await sweep(session, LADDER, at(9, 59))
    await all_sent(session)

    async def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the process died")

    with monkeypatch.context() as patch:
        patch.setattr(chase_sweep._Writer, "rows", crash)
        with pytest.raises(RuntimeError):
            await sweep(session, LADDER, at(10))
    await session.rollback()
    # The step is recorded (it will not fire again), its messages are not queued yet.
    assert (await run_of(session, "unit+0")).queued_at is None
    assert await told(session, "unit+0") == []
    again = await sweep(session, LADDER, at(10, 1))
    assert again.fired == []
    assert sorted(await told(session, "unit+0")) == [11, 12, 21]
    assert (await run_of(session, "unit+0")).queued_at is not None
    await sweep(session, LADDER, at(10, 2))
    assert sorted(await told(session, "unit+0")) == [11, 12, 21]


async def test_a_step_left_unqueued_past_the_horizon_is_dropped(
    session: AsyncSession, form: Form, monkeypatch: pytest.MonkeyPatch
) -> None:
    report_round = await county(session, form)
    await report_all_but(session, report_round.id, UNIT_1)

    async def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the process died")

    with monkeypatch.context() as patch:
        patch.setattr(chase_sweep._Writer, "rows", crash)
        with pytest.raises(RuntimeError):
            await sweep(session, LADDER, at(9))
    await session.rollback()
    # Back after 09:00 + 90 min: "an hour before the deadline" would be news from the past.
    await sweep(session, LADDER, at(10, 31))
    assert await told(session, "unit-60") == []
    assert (await run_of(session, "unit-60")).queued_at is not None
    assert sorted(await told(session, "unit+0")) == [11, 12]


async def test_each_node_told_is_recorded_with_its_late_units_and_households_of_the_moment(
    session: AsyncSession, form: Form
) -> None:
    report_round = await county(session, form)
    await report_all_but(session, report_round.id, UNIT_1, UNIT_2, UNIT_3)
    # Four households in each unit; two of 1号楼/1单元's report.
    await report(session, report_round.id, UNIT_1, "101", "102")
    await sweep(session, LADDER, at(10))
    await report(session, report_round.id, UNIT_2)  # completes after the unit step
    await sweep(session, LADDER, at(10, 30))
    await sweep(session, LADDER, at(11))
    rows = await session.execute(
        select(Node.path, ChaseStep.step, ChaseStep.late_units, ChaseStep.missing)
        .join(Node, Node.id == ChaseStep.node_id)
        .order_by(ChaseStep.step, Node.path)
    )
    assert [tuple(row) for row in rows] == [
        ("县卫健局片区/阳光小区/1号楼", "building+30", 1, 2),
        ("县卫健局片区/阳光小区/2号楼", "building+30", 1, 4),
        ("县卫健局片区/阳光小区", "grid+60", 2, 6),
        ("县卫健局片区/阳光小区/1号楼/1单元", "unit+0", 1, 2),
        ("县卫健局片区/阳光小区/1号楼/2单元", "unit+0", 1, 4),
        ("县卫健局片区/阳光小区/2号楼/1单元", "unit+0", 1, 4),
    ]
    runs = await session.execute(select(ChaseRun.step, ChaseRun.nodes).order_by(ChaseRun.step))
    assert dict(tuple(run) for run in runs) == {
        "building+30": 2,
        "grid+60": 1,
        "unit+0": 3,
        "unit-60": 0,
    }


async def test_a_unit_chunks_late_units_and_rooms_are_those_read_apart(
    session: AsyncSession, form: Form
) -> None:
    report_round = await county(session, form)
    await report_all_but(session, report_round.id, UNIT_1, UNIT_2, UNIT_3)
    # One household of UNIT_2 reports: its count and rooms drop by one.
    unit_2 = await session.scalar(select(Node.id).where(Node.path == UNIT_2))
    first = await session.scalar(
        select(HouseholdReport.id)
        .where(HouseholdReport.round_id == report_round.id, HouseholdReport.unit_id == unit_2)
        .order_by(HouseholdReport.id)
        .limit(1)
    )
    await session.execute(
        update(HouseholdReport)
        .where(HouseholdReport.id == first)
        .values(status=ReportStatus.reported)
    )
    ids = list(await session.scalars(select(Node.id).where(Node.level == "unit")))
    units, rooms = await late_units_with_rooms(session, report_round.id, ids)
    assert [unit.path for unit in units] == sorted([UNIT_1, UNIT_2, UNIT_3])
    assert units == await late_units(session, report_round.id, Level.unit, among=ids)
    assert rooms == await missing_rooms(session, report_round.id, unit_ids=ids)
    assert all(unit.missing == len(rooms[unit.unit_id]) > 0 for unit in units)
    assert await late_units_with_rooms(session, report_round.id, []) == ([], {})
