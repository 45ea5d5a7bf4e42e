"""The chase ladder's sweep at the seed county's size, and at ten times it.

    python -m benchmarks.chase [--scale 1] [--runs 3]

Builds the seed county (``models.seed``) in a fresh SQLite file with every post held,
opens a round with 20 % of the households unreported, then times the sweep at each step
of the default ladder (−60 min unit leads, 0 unit leads and officers, +30 buildings, +60
grids, +120 zones): finding the late units, rolling them up, writing the step's rows and
queuing its messages, in one transaction. ``sweep_ms`` is the slowest step's median over
``--runs`` (the step's rows and messages are removed between runs, outside the timing).
The same again at ``--scale`` × 10. The last line printed is one JSON object.
"""

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from datetime import date, datetime
from datetime import time as clock_time
from pathlib import Path

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.forms import DEFAULT_FORM_PATH
from models.chase import ChaseRun, ChaseStep, Ladder
from models.chase_sweep import sweep
from models.db import create_engine, create_session_factory
from models.forms import load_form
from models.migrate import upgrade
from models.outbox.table import OutboxMessage
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


async def time_ladder(scale: int, runs: int, directory: Path) -> tuple[int, float]:
    engine, factory, households, round_id = await county(directory, scale)
    due = datetime.fromisoformat("2026-12-05T02:00:00+00:00")
    ladder = Ladder(timezone="Asia/Shanghai")
    slowest = 0.0
    try:
        for step in ladder.steps:
            moment = due + step.after
            timings = []
            for run_index in range(runs):
                async with factory() as session:
                    started = time.perf_counter()
                    result = await sweep(session, ladder, moment)
                    timings.append((time.perf_counter() - started) * 1000)
                    fired = result.fired[0]
                    if run_index < runs - 1:
                        await _forget(session, round_id, step.name)
            median = statistics.median(timings)
            slowest = max(slowest, median)
            print(
                f"  {step.name:>12}: {fired.nodes:>6,} nodes told, {fired.messages:>6,} messages, "
                f"median {median:7.1f} ms ({', '.join(f'{t:.0f}' for t in timings)})"
            )
            # The next step's moment is later: this one stays done.
    finally:
        await engine.dispose()
    return households, slowest


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
        households, sweep_ms = await time_ladder(scale, runs, directory)
        print(f"slowest step at ×{scale}: {sweep_ms:.1f} ms (target < 100 ms)")
        households_x10, sweep_ms_x10 = await time_ladder(scale * 10, runs, directory)
        print(f"slowest step at ×{scale * 10}: {sweep_ms_x10:.1f} ms (target < 1,000 ms)")
    print(
        json.dumps(
            {
                "households": households,
                "sweep_ms": round(sweep_ms, 1),
                "households_x10": households_x10,
                "sweep_ms_x10": round(sweep_ms_x10, 1),
            }
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.scale, arguments.runs))
