"""The outbox sender: one per deployment, draining ``outbox`` at Telegram's limits.

Three kinds of coroutine share the work: a claimer that moves due rows from the database
into a per-chat schedule (committing ``sending`` before anything is sent), ``concurrency``
workers that take a row when its chat may receive, wait for an overall slot and send, and
a recorder that writes outcomes in batches. A worker waits until its outcome is committed
before it takes another row, so at any moment at most ``concurrency`` rows have been sent
without being recorded: after a crash those, and only those, may arrive twice.
"""

import asyncio
import itertools
import logging
import random
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.methods.base import TelegramMethod
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config_sections import OutboxConfig
from models.base import utcnow
from models.outbox.delivery import (
    ClaimedMessage,
    Deferred,
    Failed,
    Migrated,
    Outcome,
    Renderer,
    Retry,
    Sent,
    Unreachable,
    claim_due,
    next_due_at,
    outstanding,
    record_outcomes,
    release_claims,
)
from models.quiet_hours import QuietHours
from scheduler.ratelimit import ChatSchedule, Pacer, ScheduleClosed, Wakeup
from scheduler.send_errors import Verdict, describe, judge
from scheduler.telegram_transport import TelegramTransport

logger = logging.getLogger(__name__)

# A revoked token fails every send alike: wait instead of spending every row's attempts.
UNAUTHORIZED_PAUSE_S = 60.0
DATABASE_RETRY_S = (0.5, 1, 2, 5, 10)
IDLE_POLL_S = 0.05
# Never spin on a row that falls due this very moment.
MIN_CLAIM_WAIT_S = 0.005


class OutboxSender:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        bot: Bot,
        outbox_config: OutboxConfig,
        *,
        renderer: Renderer[TelegramMethod[Any]],
        command_centre_ids: Sequence[int] = (),
        quiet_hours: QuietHours | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.session_factory = session_factory
        self.config = outbox_config
        self.renderer = renderer
        # At night only urgent messages go; the rest wait in the outbox for the morning.
        self.quiet_hours = quiet_hours
        self.clock = clock
        # Told when a zone-level member becomes unreachable: nobody else stands above.
        self.command_centre_ids = tuple(command_centre_ids)
        self.transport = TelegramTransport(bot, outbox_config.concurrency)
        self._claimed: set[int] = set()
        self._outcomes: list[tuple[Outcome, asyncio.Future[None]]] = []
        self._wake_claimer = Wakeup()
        self._wake_recorder = Wakeup()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._new_pacing()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Put back what a crash left claimed, then start sending; call in the running loop."""
        if self.running:
            return
        async with self.session_factory() as session:
            released = await release_claims(session)
        if released:
            logger.warning("outbox: %d message(s) left in flight by a crash go again", released)
        self._stopping = False
        self._claimed.clear()
        self._new_pacing()
        self._task = asyncio.create_task(self._run(), name="outbox-sender")

    async def stop(self, grace_s: float = 30.0) -> None:
        """Let sends in flight finish and be recorded, and put back what was not sent."""
        if self._task is not None:
            self._stopping = True
            self._schedule.close()
            self.pacer.close()
            self._wake_claimer.fire()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), grace_s)
            except TimeoutError:
                logger.warning("outbox: sends still in flight after %ss; stopping anyway", grace_s)
                self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            except Exception:
                logger.exception("outbox: the sender had failed")
            self._task = None
            if self._claimed:
                async with self.session_factory() as session:
                    await release_claims(session, sorted(self._claimed))
                self._claimed.clear()
        await self.transport.close()

    def wake(self) -> None:
        """Something was just committed to the outbox: look now rather than at the next poll."""
        self._wake_claimer.fire()

    async def run_until_idle(self, timeout_s: float | None = None) -> None:
        """Send until nothing is pending or in flight (for tests and benchmarks); starts and
        stops the sender unless it is running already."""
        started_here = not self.running
        if started_here:
            await self.start()
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    if self._task is not None and self._task.done():
                        self._task.result()  # surfaces a crash of the sender
                    # Rows claimed here are outstanding for sure: ask only when none are.
                    if not self._claimed:
                        async with self.session_factory() as session:
                            if await outstanding(session) == 0:
                                return
                    await asyncio.sleep(IDLE_POLL_S)
        finally:
            if started_here:
                await self.stop()

    def _new_pacing(self) -> None:
        config = self.config
        paid = config.allow_paid_broadcast
        self.pacer = Pacer(config.paid_rate_per_s if paid else config.rate_per_s)
        self._schedule: ChatSchedule[ClaimedMessage] = ChatSchedule(
            private_gap=1 / config.private_chat_per_s, group_gap=60 / config.group_chat_per_min
        )

    # --- the coroutines ----------------------------------------------------------------

    async def _run(self) -> None:
        workers = [
            asyncio.create_task(self._work(), name=f"outbox-worker-{index}")
            for index in range(self.config.concurrency)
        ]
        claimer = asyncio.create_task(self._claim(), name="outbox-claimer")
        recorder = asyncio.create_task(self._record(), name="outbox-recorder")
        try:
            await asyncio.gather(*workers)
        finally:
            self._stopping = True
            for worker in workers:
                worker.cancel()
            self._wake_claimer.fire()
            # A claim under way finishes, so that what it claimed is known and put back.
            await asyncio.wait([claimer], timeout=DATABASE_RETRY_S[-1])
            claimer.cancel()
            await asyncio.gather(claimer, *workers, return_exceptions=True)
            self._wake_recorder.fire()
            await asyncio.gather(recorder, return_exceptions=True)

    async def _claim(self) -> None:
        batch = self.config.batch_size
        while not self._stopping:
            # A wake() while the claim reads the outbox is for rows it may not have seen.
            mark = self._wake_claimer.mark()
            room = batch - len(self._schedule)
            wait: float | None = None  # until workers have taken enough, or a wake()
            if room >= batch // 2 or len(self._schedule) == 0:
                try:
                    wait = await self._claim_batch(room)
                except Exception:
                    logger.exception("outbox: claiming failed; trying again")
                    wait = DATABASE_RETRY_S[-1]
            if wait != 0:
                await self._wake_claimer.wait(wait, since=mark)

    async def _claim_batch(self, limit: int) -> float:
        """Claim and schedule up to ``limit`` rows; returns how long to sleep (0: more due)."""
        async with self.session_factory() as session:
            quiet = self.quiet_hours is not None and self.quiet_hours.hold(self.clock())
            rows = await claim_due(session, limit, urgent_only=quiet)
            deferred: list[Outcome] = []
            for row in rows:
                self._claimed.add(row.id)
                delay = self._schedule.put(row)
                if delay is not None:
                    deferred.append(Deferred(row.id, _after(delay)))
            due = None if len(rows) == limit else await next_due_at(session, urgent_only=quiet)
        if deferred:
            await self._settle(deferred)
        if len(rows) == limit:
            return 0.0
        if due is None:
            return self.config.poll_interval_s
        wait = (due - utcnow()).total_seconds()
        return min(max(wait, MIN_CLAIM_WAIT_S), self.config.poll_interval_s)

    async def _work(self) -> None:
        while True:
            try:
                row = await self._schedule.take()
                if len(self._schedule) < self.config.batch_size // 2:
                    self._wake_claimer.fire()
                await self._deliver(row)
            except ScheduleClosed:
                return
            except Exception:
                logger.exception("outbox: a worker failed; carrying on")

    async def _deliver(self, row: ClaimedMessage) -> None:
        at = await self.pacer.acquire()
        self._schedule.sent(row.chat_id, at)
        try:
            outcome = await self._send(row)
        except Exception as error:
            outcome = self._judge(row, error)
        await self._settle([outcome])
        if isinstance(outcome, Retry | Migrated):
            self._wake_claimer.fire()

    async def _settle(self, outcomes: list[Outcome]) -> None:
        """Hand outcomes to the recorder and wait until they are committed."""
        loop = asyncio.get_running_loop()
        futures = []
        for outcome in outcomes:
            future: asyncio.Future[None] = loop.create_future()
            self._outcomes.append((outcome, future))
            futures.append(future)
        self._wake_recorder.fire()
        for future in futures:
            await future

    async def _record(self) -> None:
        while self._outcomes or not self._stopping:
            if not self._outcomes:
                await self._wake_recorder.wait(None)
                continue
            batch, self._outcomes = self._outcomes, []
            await self._write([outcome for outcome, _ in batch])
            for outcome, future in batch:
                self._claimed.discard(outcome.id)
                future.set_result(None)

    async def _write(self, outcomes: list[Outcome]) -> None:
        """Commit ``outcomes``.

        While the database is away this retries, and sending waits meanwhile: a send that
        cannot be recorded may be repeated. An outcome the database refuses for good is
        given up, alone, so that it does not hold up the others; its row stays ``sending``
        until the next start.
        """
        for attempt in itertools.count():
            try:
                async with self.session_factory() as session:
                    await record_outcomes(session, outcomes, self.command_centre_ids)
                return
            except Exception as error:
                if not _is_transient(error) and len(outcomes) > 1:
                    for outcome in outcomes:
                        await self._write([outcome])
                    return
                if not _is_transient(error) or self._stopping:
                    logger.exception("outbox: could not record %s", outcomes)
                    return
                delay = DATABASE_RETRY_S[min(attempt, len(DATABASE_RETRY_S) - 1)]
                logger.warning("outbox: recording failed (%s); retrying", type(error).__name__)
                await asyncio.sleep(delay)

    # --- one send --------------------------------------------------------------------

    async def _send(self, row: ClaimedMessage) -> Outcome:
        message_id = await self.transport.send(self.renderer.render(row))
        return Sent(row.id, row.attempts + 1, message_id)

    def _judge(self, row: ClaimedMessage, error: Exception) -> Outcome:
        """What a failed send means for its row (``scheduler.send_errors.judge``), and for
        every other send: flood control and a refused token pause them all."""
        attempts = row.attempts + 1
        reason = describe(error, self.transport.token)
        judgement = judge(error)
        verdict = judgement.verdict
        if verdict is Verdict.flood:
            self.pacer.pause(judgement.retry_after)
            logger.info("outbox: flood control, every send waits %ss", judgement.retry_after)
            return Retry(row.id, row.attempts, _after(judgement.retry_after), reason)
        if verdict is Verdict.migrated and judgement.new_chat_id is not None:
            logger.info("outbox: chat %s is now %s", row.chat_id, judgement.new_chat_id)
            return Migrated(row.id, row.chat_id, judgement.new_chat_id)
        if verdict is Verdict.unreachable:
            logger.info("outbox: chat %s unreachable: %s", row.chat_id, reason)
            return Unreachable(row.id, attempts, row.chat_id, row.member_id, reason)
        if verdict is Verdict.unauthorized:
            logger.error("outbox: Telegram refuses the bot token; waiting before sending again")
            self.pacer.pause(UNAUTHORIZED_PAUSE_S)
            return Retry(row.id, row.attempts, _after(UNAUTHORIZED_PAUSE_S), reason)
        if verdict is not Verdict.transient:
            # Telegram's refusal is enough to read; anything else is a bug worth a traceback.
            trace = None if isinstance(error, TelegramAPIError) else error
            logger.warning("outbox: message %s refused: %s", row.id, reason, exc_info=trace)
            return Failed(row.id, attempts, reason)
        if attempts >= self.config.max_attempts:
            logger.warning("outbox: message %s failed %d times: %s", row.id, attempts, reason)
            return Failed(row.id, attempts, f"after {attempts} attempts: {reason}")
        backoff = min(
            self.config.retry_max_s, self.config.retry_base_s * 2 ** (attempts - 1)
        ) * random.uniform(1.0, 1.25)
        return Retry(row.id, attempts, _after(backoff), reason)


def _is_transient(error: Exception) -> bool:
    """A database that is away or busy, rather than one refusing this change."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, OperationalError | InterfaceError | OSError | TimeoutError)


def _after(seconds: float) -> datetime:
    return utcnow() + timedelta(seconds=seconds)
