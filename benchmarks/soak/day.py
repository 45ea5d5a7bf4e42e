"""The demo's day with the bot in subprocesses, killed with SIGKILL at seeded moments and
started again; the ladder's steps fall within the run and the worker's own clock fires them."""

import asyncio
import itertools
import math
import os
import random
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from benchmarks.soak.checks import Figures, check_day
from benchmarks.soak.processes import Fleet
from bot.config import Config
from bot.config_sections import ChaseStepConfig
from bot.demo import actors
from bot.demo.day import ADMIN_ID, NOTICE_TEXT, TOKEN, CountyDay, DemoOptions, round_times
from bot.demo.run import demo_config
from bot.demo.tally import Progress, count_day
from bot.emulator import EmuUser, Limits, TelegramEmulator
from bot.forms import load_report_form, round_schedule
from models.chase import ChaseRun
from models.db import create_engine, create_session_factory, is_sqlite
from models.migrate import upgrade
from models.notices import Notice
from models.rounds import ReportRound
from scheduler.report_jobs import open_due_round


def soak_ladder(unit_gap_min: int) -> list[ChaseStepConfig]:
    """The ladder on the run's scale: minutes instead of hours, every level within the run.
    The unit's two steps are ``unit_gap_min`` apart, more than a restart takes, so that no
    restart spans both: only the later would fire then, by design, and the check would count
    the earlier as missed."""
    return [
        ChaseStepConfig(after_min=-unit_gap_min, level="unit", officers=False),
        ChaseStepConfig(after_min=0, level="unit"),
        ChaseStepConfig(after_min=1, level="building"),
        ChaseStepConfig(after_min=1, level="grid"),
        ChaseStepConfig(after_min=2, level="zone"),
    ]


# What the balancer's public address would be; the emulator maps it to the replicas.
PUBLIC_URL = "https://wuji-soak.example/telegram"
# Attempts a person makes at one thing before giving up (the bot may be down meanwhile).
ATTEMPTS = 4


@dataclass
class SoakOptions(DemoOptions):
    database: str = ""
    redis: str = ""
    replicas: int = 0
    kills: int = 3
    workdir: Path | None = None


@dataclass
class Kill:
    at_s: float  # seconds into the day
    process: str
    back_up_s: float = 0.0  # until it logged that it is up again


@dataclass
class Run:
    config: Config
    db_url: str
    emulator: TelegramEmulator
    fleet: Fleet
    due: datetime
    kills: list[Kill] = field(default_factory=list)


@asynccontextmanager
async def own_database(url: str, workdir: Path) -> AsyncIterator[str]:
    """A fresh SQLite file, or a fresh database on the PostgreSQL server ``url`` names
    (created through it, dropped at the end), so that a run starts empty."""
    if not url or is_sqlite(url):
        yield url or f"sqlite+aiosqlite:///{workdir / 'soak.sqlite3'}"
        return
    name = f"wuji_soak_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(url).execution_options(isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


def soak_config(emulator: TelegramEmulator, db_url: str, options: SoakOptions) -> Config:
    config = demo_config(emulator, db_url, options.speed)
    config.redis.url = options.redis
    config.chase.steps = soak_ladder(2)
    if options.replicas:
        config.telegram.mode = "webhook"
        config.webhook.url = PUBLIC_URL
        config.webhook.secret_token = SecretStr(secrets.token_hex(16))
    return config


class SoakDay(CountyDay):
    def __init__(self, options: SoakOptions, workdir: Path, progress: Progress) -> None:
        super().__init__(options, workdir, progress)
        self.soak = options
        self.kill_random = random.Random(options.seed * 7919 + 1)
        self.notice_texts: list[str] = []
        self.killing: asyncio.Task[None] | None = None

    async def play(self) -> Run:
        options = self.soak
        fleet = Fleet.of(self.workdir, options.replicas)
        emulator = TelegramEmulator(
            token=TOKEN, bot_username="wuji_soak_bot", limits=Limits(time_scale=options.speed)
        )
        if options.replicas:
            emulator.webhook.balance(fleet.backends, lanes=8)
        async with emulator, own_database(options.database, self.workdir) as db_url:
            self.emulator = emulator
            config = soak_config(emulator, db_url, options)
            self.config = config
            self.set_clock()
            engine = create_engine(db_url)
            sessions = create_session_factory(engine)
            self.sessions = sessions
            try:
                # As the demo: until the restart only yesterday's round exists.
                config.reports.open_time = time(0, 0)
                config.reports.due_time = time(0, 1)
                config.reports.close_time = time(0, 2)
                # Migrated once before the processes start, as a deployment runs `migrate`
                # first: three processes upgrading one PostgreSQL database at once would race.
                await upgrade(engine)
                self.progress.phase(f"start {len(fleet.processes)} bot process(es)")
                fleet.write_configs(config)
                loop = asyncio.get_running_loop()
                started = loop.time()
                await fleet.start()
                # The day's due time is written before the processes start: it leaves them
                # twice the time they just took to start, so that the day begins before it.
                start_up_s = int(loop.time() - started)
                await self.morning_before(sessions)
                await fleet.stop()
                self.progress.phase("restart with today's round and the soak's ladder")
                _now, due = round_times(config, due_in_s=self.due_in_s() + 2 * start_up_s)
                config.chase.steps = soak_ladder(max(2, math.ceil(1.5 * start_up_s / 60) + 1))
                fleet.write_configs(config)
                await fleet.start()
                run = Run(config, db_url, emulator, fleet, due)
                # The clock opens it within a minute; the driver does it now, as the demo.
                await open_due_round(sessions, round_schedule(config), load_report_form(config))
                self.killing = asyncio.create_task(self.kill_at_random(run))
                await self.the_day(run)
                await self.killing
                for process in fleet.processes:
                    await process.ready()
                await self.ladder_dealt_with(sessions, len(config.chase.steps))
                self.progress.phase("the outbox drains")
                await self.drained(sessions, timeout=180)
                await fleet.stop()
                self.progress.phase("checks")
                figures = Figures(kills=len(run.kills), repeat_bound=self.repeat_bound(run, config))
                async with sessions() as session:
                    await check_day(session, emulator, config, fleet.logs(), figures)
                    report_round = await session.scalar(
                        select(ReportRound).order_by(ReportRound.date.desc()).limit(1)
                    )
                    assert report_round is not None
                    await count_day(session, report_round, self.tally)
                self.tally.requests = list(emulator.requests)
                self.tally.chase_runs_fired = await self.ladder_runs(sessions)
                self.figures = figures
                return run
            finally:
                if self.killing is not None and not self.killing.done():
                    self.killing.cancel()  # no restart after the fleet stops
                await fleet.stop()
                await engine.dispose()

    async def kill_at_random(self, run: Run) -> None:
        """SIGKILL at ``kills`` seeded moments between now and the ladder's last step, each
        process started again at once; on replicas a web replica, the worker, then any."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        span = (self.ladder_end(run) - datetime.now(UTC)).total_seconds()
        span = max(span, 5 + 20 * self.soak.kills)
        moments: list[float] = []
        while len(moments) < self.soak.kills:
            moments = sorted(self.kill_random.uniform(5, span) for _ in range(self.soak.kills))
            if any(b - a < 15 for a, b in itertools.pairwise(moments)):
                moments = []
        names = [p.name for p in run.fleet.processes]
        if len(names) == 1:
            victims = names * self.soak.kills
        else:
            webs = [name for name in names if name != "worker"]
            victims = [self.kill_random.choice(webs), "worker"]
            victims += [self.kill_random.choice(names) for _ in moments[2:]]
            self.kill_random.shuffle(victims)
        for moment, name in zip(moments, victims, strict=False):
            await asyncio.sleep(max(0.0, start + moment - loop.time()))
            process = run.fleet.named(name)
            await process.ready()  # a kill lands on a running process, not on a start-up
            kill = Kill(round(loop.time() - start, 1), name)
            await process.kill()
            self.progress.phase(f"SIGKILL {name} at {kill.at_s:.0f} s into the day")
            await process.start()
            kill.back_up_s = round(await process.ready(), 1)
            run.kills.append(kill)

    async def ladder_dealt_with(
        self,
        sessions: async_sessionmaker[AsyncSession],
        steps: int,
        timeout: float = 180,  # noqa: ASYNC109 (a bound on the wait; the check tells what lacks)
    ) -> None:
        """Waits until the worker's clock has dealt with every step of today's round and
        queued all their messages (its first sweep after a restart comes ``sweep_every_s``
        after the start)."""
        self.progress.phase("the worker's clock deals with the ladder's last steps")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            async with sessions() as session:
                report_round = await session.scalar(
                    select(ReportRound).order_by(ReportRound.date.desc()).limit(1)
                )
                assert report_round is not None
                runs = list(
                    await session.scalars(
                        select(ChaseRun.queued_at).where(ChaseRun.round_id == report_round.id)
                    )
                )
            # Every step dealt with, and a fired step's messages all queued.
            if len(runs) >= steps and all(queued is not None for queued in runs):
                return
            await asyncio.sleep(1)

    def repeat_bound(self, run: Run, config: Config) -> int:
        """After a kill of the process that sends, at most ``[outbox] concurrency`` messages
        that were in flight can go again."""
        senders = {"bot", "worker"}
        return config.outbox.concurrency * sum(1 for k in run.kills if k.process in senders)

    def ladder_end(self, run: Run) -> datetime:
        last = max(step.after_min for step in run.config.chase.steps)
        return run.due + timedelta(minutes=last)

    async def the_day(self, run: Run) -> None:
        on_time, late = self.who_reports_when()
        self.progress.phase("unit leads report, the bot killed meanwhile", total=len(on_time))
        await self.report(on_time)
        await self.handle_alerts_and_needs()
        sweep = run.config.chase.sweep_every_s
        await self.until(run.due + timedelta(seconds=sweep + 2))
        self.progress.phase("late reports", total=len(late))
        await self.report(late)
        self.progress.phase("the county's notice")
        await self.patient_notice()
        self.progress.phase("the ladder's last step (the worker's clock)")
        await self.until(self.ladder_end(run) + timedelta(seconds=sweep + 5))

    async def until(self, moment: datetime) -> None:
        await asyncio.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))

    async def report_unit(self, lead: EmuUser) -> None:
        """As a person would: when the bot does not answer, try again a little later."""
        for attempt in range(ATTEMPTS):
            try:
                if attempt and await self.unit_done(lead):
                    return
                await super().report_unit(lead)
                return
            except (actors.DemoStepFailed, AssertionError, RuntimeError):
                if attempt == ATTEMPTS - 1:
                    raise
                await asyncio.sleep(3)

    async def unit_done(self, lead: EmuUser) -> bool:
        """/report again: True when the sheet shows every household saved."""
        lead.mark_read()
        await lead.send("/report")
        sheet = await actors.reply_where(
            lead, lambda m: any(data.startswith("rh:") for row in m.buttons() for _, data in row)
        )
        return not any(label.startswith("▫️ ") for label in actors.labels(sheet))

    async def patient_notice(self) -> None:
        """The notice, composed again (with its attempt's number) until the bot has it; a
        bot that is starting again gets a little while between attempts."""
        for attempt in range(1, 2 * ATTEMPTS + 1):
            words = NOTICE_TEXT if attempt == 1 else f"{NOTICE_TEXT}（第 {attempt} 次）"
            self.notice_texts.append(words)
            try:
                await self.send_notice(words)
            except (actors.DemoStepFailed, AssertionError) as failure:
                self.tally.failures.append(failure)
            await asyncio.sleep(3)
            async with self.sessions() as session:
                sent = await session.scalar(
                    select(Notice.id).where(Notice.text.in_(self.notice_texts)).limit(1)
                )
            if sent is not None:
                break
            await self.emulator.user(ADMIN_ID).send("/cancel")
            await asyncio.sleep(10)
        await self.acknowledge_notice()
