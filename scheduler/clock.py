"""The clock: APScheduler in the bot's event loop, holding no job state of its own.

Due work is read from the database by sweepers rather than kept as one-off scheduled
jobs, because APScheduler 3 skips a job missed during downtime after one second
(``misfire_grace_time``) and its job stores cannot be shared by processes.
"""

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from aiogram import Bot
from aiogram.utils.i18n import I18n
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Config
from bot.forms import load_report_form, round_schedule
from scheduler import claim_jobs, jobs, notice_jobs
from scheduler.chase_jobs import SUMMARY_SWEEP_S, send_daily_summary, sweep_ladder
from scheduler.report_jobs import OPEN_SWEEP_S, open_due_round, purge_old_reports
from scheduler.response_jobs import SWEEP_S, purge_old_alerts_and_needs, sweep_alerts_and_needs
from scheduler.sender import OutboxSender

logger = logging.getLogger(__name__)

STALE_CONVERSATION_AGE = timedelta(days=30)
# At a stop, how long a job already running may take to finish before it is cancelled.
STOP_WAIT_S = 10.0


class Clock:
    def __init__(
        self,
        config: Config,
        session_factory: async_sessionmaker[AsyncSession],
        bot: Bot,
        i18n: I18n,
        sender: OutboxSender,
    ) -> None:
        self.config = config
        self.session_factory = session_factory
        self.bot = bot
        self.i18n = i18n
        self.sender = sender
        self.scheduler: AsyncIOScheduler | None = None
        # The jobs running now, so that a stop can let them finish.
        self._running: set[asyncio.Task[Any]] = set()

    def _tracked(self, job: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """``job`` as the scheduler runs it: known while it runs, and when a stop cancels it
        mid-run, said in one line (every job is a sweep that finds its work again at the next
        start) rather than logged by the scheduler as a failure with its traceback."""

        @functools.wraps(job)
        async def run(*args: Any, **kwargs: Any) -> Any:
            task = asyncio.current_task()
            assert task is not None
            self._running.add(task)
            try:
                return await job(*args, **kwargs)
            except asyncio.CancelledError:
                logger.warning("clock: %s stopped mid-run by the stop", job.__qualname__)
                return None
            finally:
                self._running.discard(task)

        return run

    def _add(self, job: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> None:
        assert self.scheduler is not None
        self.scheduler.add_job(self._tracked(job), *args, **kwargs)

    def start(self) -> None:
        """Must be called inside the running event loop."""
        self.scheduler = AsyncIOScheduler(timezone=self.config.i18n.timezone)
        self._add(
            jobs.purge_stale_conversations,
            "cron",
            hour=3,
            kwargs={"session_factory": self.session_factory, "older_than": STALE_CONVERSATION_AGE},
            id="purge_stale_conversations",
            coalesce=True,
            misfire_grace_time=None,
            replace_existing=True,
        )
        every = {"coalesce": True, "max_instances": 1, "replace_existing": True}
        # Hourly rather than once a night: a purge is idempotent, and a bot that was down
        # at the appointed hour would otherwise skip it.
        self._add(
            jobs.purge_outbox,
            "interval",
            hours=1,
            kwargs={
                "session_factory": self.session_factory,
                "older_than": timedelta(days=self.config.outbox.retention_days),
            },
            id="purge_outbox",
            **every,
        )
        # What a person running the county reads in the log each hour.
        self._add(
            jobs.log_traffic,
            "interval",
            hours=1,
            kwargs={"session_factory": self.session_factory},
            id="log_traffic",
            **every,
        )
        self._add(
            self._dispatch_scheduled_notices, "interval", seconds=15, id="notices.dispatch", **every
        )
        self._add(
            notice_jobs.refresh_progress,
            "interval",
            seconds=self.config.notices.progress_every_s,
            kwargs={"session_factory": self.session_factory, "bot": self.bot, "i18n": self.i18n},
            id="notices.progress",
            **every,
        )
        self._add(self._remind_and_escalate, "interval", seconds=60, id="notices.remind", **every)
        self._add(
            self._expire_claims,
            "interval",
            seconds=claim_jobs.EXPIRY_SWEEP_S,
            id="expire_claims",
            **every,
        )
        self._add(
            self._sweep_alerts_and_needs,
            "interval",
            seconds=SWEEP_S,
            id="alerts_needs_sweep",
            **every,
        )
        self._add(
            purge_old_alerts_and_needs,
            "interval",
            hours=1,
            kwargs={
                "session_factory": self.session_factory,
                "retention_days": self.config.reports.retention_days,
            },
            id="purge_old_alerts_and_needs",
            **every,
        )
        # Reporting rounds open on time (freezing who is expected); old reports go.
        self._add(
            open_due_round,
            "interval",
            seconds=OPEN_SWEEP_S,
            kwargs={
                "session_factory": self.session_factory,
                "schedule": round_schedule(self.config),
                "form": load_report_form(self.config),
            },
            id="open_report_round",
            **every,
        )
        self._add(
            purge_old_reports,
            "interval",
            hours=1,
            kwargs={
                "session_factory": self.session_factory,
                "retention_days": self.config.reports.retention_days,
            },
            id="purge_old_reports",
            **every,
        )
        # The chase ladder's steps and the daily summary, read from the database when due.
        self._add(
            self._chase,
            "interval",
            seconds=self.config.chase.sweep_every_s,
            id="chase_sweep",
            **every,
        )
        self._add(self._summary, "interval", seconds=SUMMARY_SWEEP_S, id="daily_summary", **every)
        self.scheduler.start()
        logger.info("clock started")

    async def _chase(self) -> None:
        if await sweep_ladder(self.session_factory, self.config):
            self.sender.wake()

    async def _summary(self) -> None:
        if await send_daily_summary(self.session_factory, self.config, self.i18n):
            self.sender.wake()

    async def _expire_claims(self) -> None:
        if await claim_jobs.expire_undecided_claims(self.session_factory, self.config):
            self.sender.wake()

    async def _dispatch_scheduled_notices(self) -> None:
        if await notice_jobs.dispatch_scheduled_notices(self.session_factory, self.config):
            self.sender.wake()

    async def _remind_and_escalate(self) -> None:
        if await notice_jobs.remind_and_escalate(self.session_factory, self.config):
            self.sender.wake()

    async def _sweep_alerts_and_needs(self) -> None:
        if await sweep_alerts_and_needs(self.session_factory, self.config):
            self.sender.wake()

    async def stop(self) -> None:
        """No job starts any more; the ones running get ``STOP_WAIT_S`` to finish, then the
        scheduler stops (cancelling any still running)."""
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.pause()
            if self._running:
                await asyncio.wait(set(self._running), timeout=STOP_WAIT_S)
            self.scheduler.shutdown(wait=False)
        self.scheduler = None
