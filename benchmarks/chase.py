"""The chase ladder's sweep at the seed county's size, and at ten times it.

    python -m benchmarks.chase [--scale 1] [--runs 3]

Builds the seed county (``models.seed``) in a fresh SQLite file with every post held,
opens a round with 20 % of the households unreported, then times the sweep at each step
of the default ladder (−60 min unit leads, 0 unit leads and officers, +30 buildings, +60
grids, +120 zones): finding the late units, rolling them up and recording the step (one
transaction), then queueing its messages a chunk of nodes per transaction until enough
wait to be sent (``models.chase_sweep``). ``sweep_ms`` is the slowest step's median over
``--runs`` of the sweep that fires it; the figures beside it are the step's own
transaction, the longest stretch between two commits, and the sweeps until every message
is queued (the outbox marked sent between them, outside the timing). The step's rows and
messages are removed between runs, outside the timing. The same again at ``--scale`` ×
10. The last line printed is one JSON object.
"""

import argparse
import asyncio
import itertools
import json
import statistics
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from datetime import time as clock_time
from pathlib import Path

from sqlalchemy import delete, event, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.app import settle_memory
from bot.forms import DEFAULT_FORM_PATH
from models.chase import ChaseRun, ChaseStep, Ladder
from models.chase_sweep import sweep
from models.db import create_engine, create_session_factory
from models.form_parse import load_form
from models.migrate import upgrade
from models.outbox.table import OutboxMessage, OutboxStatus
from models.rounds import HouseholdReport, RoundSchedule, open_round
from models.seed import seed_demo

DAY = date(2026, 12, 5)
SCHEDULE = RoundSchedule(clock_time(7), clock_time(10), clock_time(7), "Asia/Shanghai")
# A member per post: telegram ids far from any real one.
MEMBER_BASE = 10_000_000


async def county(
    directory: Path, scale: int
) -> tuple[AsyncEngine, async_sessionmaker[AsyncSession], int, int]:
    engine = create_engine(f"sqlite+aiosqlite:///{directory / f'chase-{scale}.db'}")
    await upgrade(engine)
    factory = create_session_factory(engine)
    async with factory() as session:
        report = await seed_demo(session, scale=scale)
        await session.execute(
            text(
                "INSERT INTO members (telegram_id, name, reachable, created_at) "
                f"SELECT {MEMBER_BASE} + id, 'member ' || id, true, CURRENT_TIMESTAMP FROM posts"
            )
        )
        await session.execute(
            text(
                "UPDATE posts SET holder_id = "
                f"(SELECT id FROM members WHERE telegram_id = {MEMBER_BASE} + posts.id)"
            )
        )
        await session.commit()
        report_round = await open_round(session, SCHEDULE, load_form(DEFAULT_FORM_PATH), DAY)
        # Every fifth household, spread over the county, is still missing.
        await session.execute(
            text(
                "UPDATE household_reports SET status = 'reported' "
                "WHERE round_id = :round AND (household_id * 7919) % 5 != 0"
            ),
            {"round": report_round.id},
        )
        await session.commit()
        missing = await session.scalar(
            select(func.count()).where(
                HouseholdReport.round_id == report_round.id, HouseholdReport.status == "missing"
            )
        )
    print(f"seed county ×{scale}: {report.households:,} households, {missing:,} unreported")
    return engine, factory, report.households, report_round.id


@dataclass(frozen=True)
class Timing:
    households: int
    # The slowest step's medians, in ms: the sweep that fires the step (recorded, and its
    # first messages queued), the step's own transaction within it, the longest stretch
    # between two commits, and every sweep until all its messages are queued (the outbox
    # marked sent between them, outside the timing, as the sender would).
    sweep_ms: float
    record_ms: float
    longest_ms: float
    all_queued_ms: float
    # CPU time of the process (its SQLite thread included) for the sweep that fires it.
    sweep_cpu_ms: float


async def time_ladder(scale: int, runs: int, directory: Path) -> Timing:
    engine, factory, households, round_id = await county(directory, scale)
    settle_memory()  # as `python -m bot run` does once started
    due = datetime.fromisoformat("2026-12-05T02:00:00+00:00")
    ladder = Ladder(timezone="Asia/Shanghai")
    figures: dict[str, list[float]] = {}
    try:
        for step in ladder.steps:
            moment = due + step.after
            runs_of: dict[str, list[float]] = defaultdict(list)
            for run_index in range(runs):
                async with factory() as session:
                    commits: list[float] = []
                    event.listen(
                        session.sync_session,
                        "after_commit",
                        lambda _session, commits=commits: commits.append(time.perf_counter()),
                    )
                    started, cpu = time.perf_counter(), time.process_time()
                    result = await sweep(session, ladder, moment)
                    ended = time.perf_counter()
                    runs_of["sweep"].append((ended - started) * 1000)
                    runs_of["cpu"].append((time.process_time() - cpu) * 1000)
                    runs_of["record"].append((commits[0] - started) * 1000)
                    marks = [started, *commits]
                    runs_of["longest"].append(
                        max(b - a for a, b in itertools.pairwise(marks)) * 1000
                    )
                    fired = result.fired[0]
                    total, messages = ended - started, fired.messages
                    while not await _all_queued(session, round_id, step.name):
                        await _sent(session, round_id, step.name)
                        started = time.perf_counter()
                        more = await sweep(session, ladder, moment)
                        total += time.perf_counter() - started
                        messages = await _queued(session, round_id, step.name)
                        assert not more.fired
                    runs_of["all"].append(total * 1000)
                    if run_index < runs - 1:
                        await _forget(session, round_id, step.name)
            medians = {key: statistics.median(values) for key, values in runs_of.items()}
            for key, value in medians.items():
                figures.setdefault(key, []).append(value)
            print(
                f"  {step.name:>12}: {fired.nodes:>6,} nodes told; first sweep "
                f"{medians['sweep']:7.1f} ms ({', '.join(f'{t:.0f}' for t in runs_of['sweep'])}; "
                f"CPU {medians['cpu']:.0f}), step recorded in {medians['record']:6.1f} ms, "
                f"{fired.messages:>6,} messages queued; all {messages:,} queued in "
                f"{medians['all']:7.1f} ms of sweeps; longest transaction "
                f"{medians['longest']:6.1f} ms"
            )
            # The next step's moment is later: this one stays done.
    finally:
        await engine.dispose()
    return Timing(
        households,
        sweep_ms=max(figures["sweep"]),
        record_ms=max(figures["record"]),
        longest_ms=max(figures["longest"]),
        all_queued_ms=max(figures["all"]),
        sweep_cpu_ms=max(figures["cpu"]),
    )


async def _all_queued(session: AsyncSession, round_id: int, step: str) -> bool:
    queued_at = await session.scalar(
        select(ChaseRun.queued_at).where(ChaseRun.round_id == round_id, ChaseRun.step == step)
    )
    return queued_at is not None


async def _sent(session: AsyncSession, round_id: int, step: str) -> None:
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.source == f"chase:{round_id}:{step}")
        .values(status=OutboxStatus.sent.value)
    )
    await session.commit()


async def _queued(session: AsyncSession, round_id: int, step: str) -> int:
    count = await session.scalar(
        select(func.count()).where(OutboxMessage.source == f"chase:{round_id}:{step}")
    )
    return int(count or 0)


async def _forget(session: AsyncSession, round_id: int, step: str) -> None:
    """Undo a step so that the next run fires it again."""
    for statement in (
        delete(ChaseRun).where(ChaseRun.round_id == round_id, ChaseRun.step == step),
        delete(ChaseStep).where(ChaseStep.round_id == round_id, ChaseStep.step == step),
        delete(OutboxMessage).where(OutboxMessage.source == f"chase:{round_id}:{step}"),
    ):
        await session.execute(statement)
    await session.commit()


async def main(scale: int, runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="wuji-chase-") as folder:
        directory = Path(folder)
        one = await time_ladder(scale, runs, directory)
        print(f"slowest step at ×{scale}: {one.sweep_ms:.1f} ms (target < 100 ms)")
        ten = await time_ladder(scale * 10, runs, directory)
        print(f"slowest step at ×{scale * 10}: {ten.sweep_ms:.1f} ms (target < 1,000 ms)")
    print(
        json.dumps(
            {
                "households": one.households,
                "sweep_ms": round(one.sweep_ms, 1),
                "households_x10": ten.households,
                "sweep_ms_x10": round(ten.sweep_ms, 1),
                "record_ms": round(one.record_ms, 1),
                "record_ms_x10": round(ten.record_ms, 1),
                "longest_transaction_ms": round(one.longest_ms, 1),
                "longest_transaction_ms_x10": round(ten.longest_ms, 1),
                "all_queued_ms": round(one.all_queued_ms, 1),
                "all_queued_ms_x10": round(ten.all_queued_ms, 1),
                "sweep_cpu_ms": round(one.sweep_cpu_ms, 1),
                "sweep_cpu_ms_x10": round(ten.sweep_cpu_ms, 1),
            }
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.scale, arguments.runs))
