"""``python -m bot demo``: the service runs in this process as in production (Application,
long polling, its clock and outbox sender); emulated people talk to it. Steps hours apart on
the county's clock (the ladder after the due time, the 18:00 summary) are driven by calling
the clock's own jobs with a simulated "now"; the rest happens in real time."""

import asyncio
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import select

from bot.app import Application, settle_memory
from bot.config import Config
from bot.demo.day import (
    ADMIN_ID,
    TOKEN,
    CountyDay,
    DemoOptions,
    round_schedule_zone,
    round_times,
)
from bot.demo.tally import Progress, Tally, count_day, write_export
from bot.emulator import Limits, TelegramEmulator
from bot.forms import load_report_form, round_schedule
from models.rounds import ReportRound
from scheduler.chase_jobs import send_daily_summary, sweep_ladder
from scheduler.report_jobs import open_due_round


def demo_config(emulator: TelegramEmulator, db_url: str, speed: float) -> Config:
    config = Config()
    config.telegram.token = SecretStr(TOKEN)
    config.telegram.api_server = emulator.base_url
    config.telegram.bot_username = emulator.bot_user["username"]
    config.database.url = db_url
    config.admins.telegram_ids = [ADMIN_ID]
    # Telegram's limits hold in the emulator, in time ``speed`` times faster.
    config.outbox.rate_per_s *= speed
    config.outbox.private_chat_per_s *= speed
    config.outbox.group_chat_per_min *= speed
    config.outbox.poll_interval_s = 0.1
    config.outbox.quiet_hours = False
    config.chase.sweep_every_s = 10
    config.notices.progress_every_s = 2
    config.console.enabled = False
    return config


@asynccontextmanager
async def service(config: Config) -> AsyncIterator[Application]:
    """The bot as ``python -m bot run`` runs it: migrated, clock and sender, polling."""
    application = Application.build(config)
    await application.prepare()
    settle_memory()
    await application.start_workers()
    polling = asyncio.create_task(
        application.dispatcher.start_polling(
            application.bot, handle_signals=False, close_bot_session=False, polling_timeout=1
        )
    )
    try:
        yield application
    finally:
        with suppress(RuntimeError):
            await application.dispatcher.stop_polling()
        with suppress(asyncio.CancelledError):
            await asyncio.wait_for(polling, timeout=10)
        await application.close()


class DemoDay(CountyDay):
    """The day with the service in this process."""

    async def play(self) -> Tally:
        limits = Limits(time_scale=self.options.speed)
        async with TelegramEmulator(
            token=TOKEN,
            bot_username="wuji_demo_bot",
            bot_first_name="五级 Wuji (demo)",
            limits=limits,
        ) as emulator:
            self.emulator = emulator
            db_url = f"sqlite+aiosqlite:///{self.workdir / 'wuji-demo.sqlite3'}"
            config = demo_config(emulator, db_url, self.options.speed)
            self.config = config
            self.set_clock()
            # Until the restart no round is open but yesterday's first two minutes, in which
            # its history is written (a round left open would shadow today's).
            config.reports.open_time = time(0, 0)
            config.reports.due_time = time(0, 1)
            config.reports.close_time = time(0, 2)
            async with service(config) as application:
                await self.morning_before(application.session_factory)
            # The bot restarts overnight with the day's schedule (set from the real clock).
            self.progress.phase("restart with today's round")
            _now, due = round_times(config, due_in_s=self.due_in_s())
            async with service(config) as application:
                await self.the_day(application, due)
            self.tally.requests = list(emulator.requests)
        return self.tally

    async def the_day(self, application: Application, due: datetime) -> None:
        sessions = application.session_factory
        config = self.config
        await open_due_round(sessions, round_schedule(config), load_report_form(config))
        on_time, late = self.who_reports_when()
        self.progress.phase("07:00–10:00 unit leads report", total=len(on_time))
        await self.report(on_time)
        await self.handle_alerts_and_needs()
        self.progress.phase("10:00 due: the ladder's first steps (on the real clock)")
        wait_s = (due - datetime.now(UTC)).total_seconds() + config.chase.sweep_every_s + 2
        await asyncio.sleep(max(0.0, wait_s))
        self.progress.phase("10:00–10:30 late reports", total=len(late))
        await self.report(late)

        self.progress.phase("10:30, 11:00, 12:00: the ladder climbs (simulated time)")
        for minutes in (30, 60, 120):
            await sweep_ladder(sessions, config, due + timedelta(minutes=minutes, seconds=1))
            application.sender.wake()
        self.progress.phase("14:00 the county's notice")
        await self.notice()
        self.progress.phase("18:00 the daily summary (simulated time)")
        schedule_zone = round_schedule_zone(config)
        local_due = due.astimezone(schedule_zone)
        summary_at = datetime.combine(
            local_due.date(), config.chase.summary_time, tzinfo=schedule_zone
        ) + timedelta(seconds=1)
        await send_daily_summary(
            sessions, config, self.i18n, max(summary_at, datetime.now(UTC)).astimezone(UTC)
        )
        application.sender.wake()
        self.progress.phase("the outbox drains")
        await self.drained(sessions)
        async with sessions() as session:
            report_round = await session.scalar(
                select(ReportRound).order_by(ReportRound.date.desc()).limit(1)
            )
            assert report_round is not None
            await count_day(session, report_round, self.tally)
            self.tally.export = await write_export(
                session, report_round, self.options.out or Path.cwd()
            )
        self.tally.chase_runs_fired = await self.ladder_runs(sessions)


async def run_demo(options: DemoOptions) -> int:
    progress = Progress()
    with tempfile.TemporaryDirectory(prefix="wuji-demo-") as workdir:
        progress.start()
        try:
            tally = await DemoDay(options, Path(workdir), progress).play()
        finally:
            progress.stop()
    tally.print_table()
    return 0 if not tally.failures else 1
