"""The web console on the seed county mid-round.

    python -m benchmarks.console [--viewers 50] [--rate 100] [--seconds 8] [--pairs 3]

1. The county-level page's data (every panel, ``bot.console.pages.build_panels``) on the
   seed county with 14 rounds, today's 60 % reported: median of repeated builds, cold (no
   trend points kept) and warm (closed rounds' trend points kept, as the console does).
2. Report saves through the domain (``save_report``, what /report's handler calls), as fast
   as they go, in windows of ``--seconds`` without and with ``--viewers`` live streams open
   on the county page, ``--pairs`` pairs alternated (a shared machine drifts: the drop is
   the median of the pairs', each pair's own in ``drops``); then paced at ``--rate`` per
   second with the viewers (at most 64 in flight, as the bot handles updates), to check
   that rate is held. The viewers are aiohttp clients in the same process, counting pushes
   without parsing them: their reading is charged to the bot too, so the drop measured is
   an upper bound of what the console costs it.

The last line printed is one JSON object.
"""

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp.test_utils import TestServer
from sqlalchemy import select, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Config
from bot.console import ConsoleDeps, setup_console
from bot.console.pages import PanelCache, build_panels
from bot.forms import DEFAULT_FORM_PATH
from bot.i18n import create_i18n
from models.access import Scope
from models.console_auth import issue_link, open_link
from models.db import create_engine, create_session_factory
from models.form_parse import load_form
from models.migrate import upgrade
from models.registration import get_or_create_member
from models.report_saving import Consequences, save_report
from models.reports import Reporter
from models.rounds import HouseholdReport, ReportHow, RoundSchedule, open_round
from models.seed import seed_demo

ADMIN_ID = 900_001
ZONE = "Asia/Shanghai"
SCHEDULE = RoundSchedule(
    datetime.min.time(), datetime.strptime("10:00", "%H:%M").time(), datetime.min.time(), ZONE
)
REPORTER = Reporter(ADMIN_ID, None, Scope(is_admin=True, roots=frozenset()))
SETTINGS = Consequences(nobody_home_flag_after=3, command_centre=(ADMIN_ID,))
ANSWERS = {
    "people_at_home": 3,
    "symptoms": 0,
    "test_status": "negative",
    "isolation": "none",
    "vulnerable": ["aged_80_plus"],
    "needs": [],
    "note": "一切正常",
}


async def seed(session_factory: async_sessionmaker[AsyncSession]) -> int:
    """The seed county, 13 past rounds (80–98 % reported) and today's, 60 % reported."""
    form = load_form(DEFAULT_FORM_PATH)
    today = datetime.now(ZoneInfo(ZONE)).date()
    async with session_factory() as session:
        await seed_demo(session)
        for back in range(13, -1, -1):
            report_round = await open_round(session, SCHEDULE, form, today - timedelta(days=back))
            share = 60 if back == 0 else 80 + back
            await session.execute(
                update(HouseholdReport)
                .where(
                    HouseholdReport.round_id == report_round.id,
                    HouseholdReport.household_id % 100 < share,
                )
                .values(
                    status="reported",
                    how="no_change",
                    answers=ANSWERS,
                    revision=1,
                    reported_at=report_round.opens_at + timedelta(hours=2 if back % 3 else 11),
                ),
                execution_options={"synchronize_session": False},
            )
            await session.commit()
        return report_round.id


def config_for(url: str) -> Config:
    config = Config()
    config.database.url = url
    config.admins.telegram_ids = [ADMIN_ID]
    config.console.enabled = True
    config.reports.open_time = datetime.min.time()
    return config


async def page_data(
    config: Config, session_factory: async_sessionmaker[AsyncSession]
) -> dict[str, float]:
    cold: list[float] = []
    warm: list[float] = []
    cache = PanelCache()
    async with session_factory() as session:
        for runs, kept in ((5, False), (21, True)):
            for _ in range(runs):
                started = time.perf_counter()
                await build_panels(
                    session, config, None, "zh_Hans", True, cache if kept else PanelCache()
                )
                (warm if kept else cold).append((time.perf_counter() - started) * 1000)
    return {
        "page_data_cold_ms": round(statistics.median(cold), 1),
        "page_data_ms": round(statistics.median(warm[1:]), 1),
    }


class Saver:
    def __init__(self, session_factory: async_sessionmaker[AsyncSession], round_id: int) -> None:
        self.session_factory = session_factory
        self.round_id = round_id
        # Households to report, each with the revision its save must name; those saved wait
        # in ``saved`` and are reported again (a correction) once every missing one is.
        self.queue: list[tuple[int, int]] = []
        self.saved: list[tuple[int, int]] = []
        self.latencies: list[float] = []
        self.failed = 0

    async def load(self) -> None:
        async with self.session_factory() as session:
            rows = await session.execute(
                select(HouseholdReport.household_id, HouseholdReport.revision).where(
                    HouseholdReport.round_id == self.round_id,
                    HouseholdReport.status == "missing",
                )
            )
            self.queue = [(household_id, revision) for household_id, revision in rows]

    async def save_one(self) -> None:
        if not self.queue:
            self.queue, self.saved = self.saved[::-1], []
        household_id, revision = self.queue.pop()
        started = time.perf_counter()
        async with self.session_factory() as session:
            await save_report(
                session,
                REPORTER,
                SETTINGS,
                round_id=self.round_id,
                household_id=household_id,
                revision=revision,
                how=ReportHow.form,
                answers=ANSWERS,
            )
        self.latencies.append((time.perf_counter() - started) * 1000)
        self.saved.append((household_id, revision + 1))

    async def flat_out(self, seconds: float, workers: int = 4) -> float:
        done = 0
        deadline = time.perf_counter() + seconds

        async def work() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                await self.save_one()
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(work() for _ in range(workers)))
        return done / (time.perf_counter() - started)

    async def paced(self, seconds: float, rate: float, in_flight: int = 64) -> float:
        """Saves offered at ``rate`` per second, at most ``in_flight`` at once (as the bot
        handles at most so many updates at once): those beyond wait their turn, so the
        rate achieved falls when the saves cannot keep up. A save the database refuses
        (SQLite's writer busy past its timeout) is counted in ``failed``."""
        done = 0
        slots = asyncio.Semaphore(in_flight)
        tasks: set[asyncio.Task[None]] = set()

        async def one() -> None:
            nonlocal done
            try:
                await self.save_one()
                done += 1
            except OperationalError:
                self.failed += 1
            finally:
                slots.release()

        started = time.perf_counter()
        for index in range(int(seconds * rate)):
            delay = started + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await slots.acquire()
            task = asyncio.create_task(one())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
        return done / (time.perf_counter() - started)


async def viewer(url: str, cookie: str, pushes: list[int], stop: asyncio.Event) -> None:
    async with (
        aiohttp.ClientSession(cookies={"wuji_console": cookie}) as client,
        client.get(url, timeout=aiohttp.ClientTimeout(total=None)) as response,
    ):
        assert response.status == 200, response.status
        while not stop.is_set():
            try:
                chunk = await asyncio.wait_for(response.content.readany(), 1.0)
            except TimeoutError:
                continue
            if not chunk:
                return
            pushes.append(chunk.count(b"event: panels"))


async def run(viewers: int, rate: float, seconds: float, pairs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="wuji-bench-") as directory:
        url = f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
        engine = create_engine(url)
        await upgrade(engine)
        session_factory = create_session_factory(engine)
        config = config_for(url)
        started = time.perf_counter()
        round_id = await seed(session_factory)
        print(f"seeded the county with 14 rounds in {time.perf_counter() - started:.1f} s")
        result: dict[str, Any] = await page_data(config, session_factory)
        print(f"county page data: {result}")

        saver = Saver(session_factory, round_id)
        await saver.load()

        app = aiohttp.web.Application()
        setup_console(app, ConsoleDeps(config, session_factory, create_i18n("zh_Hans")))
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        cookies = []
        async with session_factory() as session:
            admin = await get_or_create_member(session, ADMIN_ID, "指挥中心", None, "zh_Hans")
            await session.commit()
            for _ in range(viewers):
                token = await issue_link(session, admin, timedelta(minutes=5))
                opened = await open_link(session, token, timedelta(hours=1))
                assert opened is not None
                cookies.append(opened.session_token)
        # /console ends a member's earlier sessions; the benchmark's viewers keep theirs.
        async with engine.begin() as connection:
            await connection.execute(text("UPDATE console_sessions SET ended_at = NULL"))
        stream_url = str(server.make_url("/console/stream/county"))
        pushes: list[int] = []

        @asynccontextmanager
        async def watching() -> AsyncIterator[None]:
            stop = asyncio.Event()
            tasks = [
                asyncio.create_task(viewer(stream_url, cookie, pushes, stop)) for cookie in cookies
            ]
            await asyncio.sleep(3)  # connected, and the first panels pushed
            try:
                yield
            finally:
                stop.set()
                await asyncio.gather(*tasks, return_exceptions=True)

        # Windows alone and with the viewers alternate (alone first, then with, then with
        # first...), so that the machine's drift over the run falls on both sides; the drop
        # is the median of the pairs'.
        windows: list[tuple[float, float]] = []
        for index in range(pairs):
            rates: dict[bool, float] = {}
            for watched in (False, True) if index % 2 == 0 else (True, False):
                if watched:
                    async with watching():
                        rates[True] = await saver.flat_out(seconds)
                else:
                    rates[False] = await saver.flat_out(seconds)
            windows.append((rates[False], rates[True]))
            print(
                f"pair {index + 1}: report saves alone {rates[False]:.0f}/s, "
                f"with {viewers} viewers {rates[True]:.0f}/s"
            )
        drops = [1 - watched / alone for alone, watched in windows]
        alone = statistics.median(rate for rate, _ in windows)
        watched = statistics.median(rate for _, rate in windows)
        async with watching():
            saver.latencies.clear()
            paced = await saver.paced(seconds, rate)
        p95 = statistics.quantiles(saver.latencies, n=20)[-1]
        print(
            f"paced at {rate:.0f}/s with viewers: {paced:.1f}/s, p95 {p95:.1f} ms, "
            f"{saver.failed} refused"
        )
        print(f"pushes seen by the viewers: {sum(pushes)}")
        await server.close()
        await engine.dispose()
        result.update(
            {
                "viewers": viewers,
                "pushes": sum(pushes),
                "saves_per_s_alone": round(alone, 1),
                "saves_per_s_with_viewers": round(watched, 1),
                "drop": round(statistics.median(drops), 3),
                "drops": [round(drop, 3) for drop in drops],
                "paced_rate": rate,
                "paced_achieved_per_s": round(paced, 1),
                "paced_p95_ms": round(p95, 1),
                "paced_failed": saver.failed,
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        )
        return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.console", description=__doc__)
    parser.add_argument("--viewers", type=int, default=50)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=8.0, help="per window")
    parser.add_argument(
        "--pairs", type=int, default=3, help="windows alone and with the viewers, alternated"
    )
    arguments = parser.parse_args()
    figures = asyncio.run(
        run(arguments.viewers, arguments.rate, arguments.seconds, arguments.pairs)
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
