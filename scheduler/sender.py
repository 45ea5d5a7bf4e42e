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
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

import orjson
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import CopyMessage, SendDocument, SendMessage, SendPhoto
from aiogram.methods.base import Response, TelegramMethod, TelegramType
from aiogram.types import (
    ForceReply,
    InlineKeyboardMarkup,
    InputFile,
    MessageId,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)
from aiohttp import ClientError, ClientTimeout
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import OutboxConfig
from models.base import utcnow
from models.outbox import (
    ClaimedMessage,
    Deferred,
    Failed,
    MessageKind,
    Migrated,
    Outcome,
    Retry,
    Sent,
    Unreachable,
    claim_due,
    next_due_at,
    outstanding,
    record_outcomes,
    release_claims,
)
from scheduler.ratelimit import ChatSchedule, Pacer, ScheduleClosed, Wakeup

logger = logging.getLogger(__name__)

# Bad requests that mean the bot may not write to this chat at all.
UNREACHABLE_BAD_REQUESTS = ("chat not found", "peer_id_invalid", "user not found")
# A revoked token fails every send alike: wait instead of spending every row's attempts.
UNAUTHORIZED_PAUSE_S = 60.0
DATABASE_RETRY_S = (0.5, 1, 2, 5, 10)
IDLE_POLL_S = 0.05
# Never spin on a row that falls due this very moment.
MIN_CLAIM_WAIT_S = 0.005


# aiogram parses every answer as ``Response[<result type>]``; pydantic caches such generic
# classes only while something references them, so without this reference the garbage
# collector keeps dropping it and each rebuild costs ~20 ms of schema building.
RESPONSE_TYPE = Response[MessageId]
JSON_BODY = {"Content-Type": "application/json"}

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | ForceReply


class OutboxSender:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        bot: Bot,
        outbox_config: OutboxConfig,
        *,
        command_centre_ids: Sequence[int] = (),
    ) -> None:
        self.session_factory = session_factory
        self.config = outbox_config
        # Told when a zone-level member becomes unreachable: nobody else stands above.
        self.command_centre_ids = tuple(command_centre_ids)
        self.bot, self._owns_bot = _bot_of_its_own(bot, outbox_config.concurrency)
        self._paid = True if outbox_config.allow_paid_broadcast else None
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

    async def stop(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Let sends in flight finish and be recorded, and put back what was not sent."""
        if self._task is not None:
            self._stopping = True
            self._schedule.close()
            self.pacer.close()
            self._wake_claimer.fire()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except TimeoutError:
                logger.warning("outbox: sends still in flight after %ss; stopping anyway", timeout)
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
        if self._owns_bot:
            await self.bot.session.close()

    def wake(self) -> None:
        """Something was just committed to the outbox: look now rather than at the next poll."""
        self._wake_claimer.fire()

    async def run_until_idle(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Send until nothing is pending or in flight (for tests and benchmarks); starts and
        stops the sender unless it is running already."""
        started_here = not self.running
        if started_here:
            await self.start()
        try:
            async with asyncio.timeout(timeout):
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
            room = batch - len(self._schedule)
            wait: float | None = None  # until workers have taken enough, or a wake()
            if room >= batch // 2 or len(self._schedule) == 0:
                try:
                    wait = await self._claim_batch(room)
                except Exception:
                    logger.exception("outbox: claiming failed; trying again")
                    wait = DATABASE_RETRY_S[-1]
            if wait != 0:
                await self._wake_claimer.wait(wait)

    async def _claim_batch(self, limit: int) -> float:
        """Claim and schedule up to ``limit`` rows; returns how long to sleep (0: more due)."""
        async with self.session_factory() as session:
            rows = await claim_due(session, limit)
            deferred: list[Outcome] = []
            for row in rows:
                self._claimed.add(row.id)
                delay = self._schedule.put(row)
                if delay is not None:
                    deferred.append(Deferred(row.id, _after(delay)))
            due = None if len(rows) == limit else await next_due_at(session)
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
        sent: MessageId = await self.bot(_method(row, self._paid))
        return Sent(row.id, row.attempts + 1, sent.message_id)

    def _judge(self, row: ClaimedMessage, error: Exception) -> Outcome:
        """What a failed send means for its row."""
        attempts = row.attempts + 1
        reason = self._describe(error)
        if isinstance(error, TelegramRetryAfter):
            self.pacer.pause(error.retry_after)
            logger.info("outbox: flood control, every send waits %ss", error.retry_after)
            return Retry(row.id, row.attempts, _after(error.retry_after), reason)
        if isinstance(error, TelegramMigrateToChat):
            logger.info("outbox: chat %s is now %s", row.chat_id, error.migrate_to_chat_id)
            return Migrated(row.id, row.chat_id, error.migrate_to_chat_id)
        if isinstance(error, TelegramForbiddenError) or (
            isinstance(error, TelegramBadRequest)
            and any(text in error.message.lower() for text in UNREACHABLE_BAD_REQUESTS)
        ):
            logger.info("outbox: chat %s unreachable: %s", row.chat_id, reason)
            return Unreachable(row.id, attempts, row.chat_id, row.member_id, reason)
        if isinstance(error, TelegramUnauthorizedError):
            logger.error("outbox: Telegram refuses the bot token; waiting before sending again")
            self.pacer.pause(UNAUTHORIZED_PAUSE_S)
            return Retry(row.id, row.attempts, _after(UNAUTHORIZED_PAUSE_S), reason)
        transient = isinstance(
            error, TelegramServerError | TelegramNetworkError | ClientDecodeError
        ) and not isinstance(error, TelegramEntityTooLarge)
        if not transient:
            if isinstance(error, TelegramAPIError):
                logger.warning("outbox: message %s refused: %s", row.id, reason)
            else:
                logger.error("outbox: message %s cannot be sent", row.id, exc_info=error)
            return Failed(row.id, attempts, reason)
        if attempts >= self.config.max_attempts:
            logger.warning("outbox: message %s failed %d times: %s", row.id, attempts, reason)
            return Failed(row.id, attempts, f"after {attempts} attempts: {reason}")
        backoff = min(
            self.config.retry_max_s, self.config.retry_base_s * 2 ** (attempts - 1)
        ) * random.uniform(1.0, 1.25)
        return Retry(row.id, attempts, _after(backoff), reason)

    def _describe(self, error: Exception) -> str:
        text = str(error) if isinstance(error, TelegramAPIError) else repr(error)
        text = f"{type(error).__name__}: {text}"
        # Never store or log the token, whatever an HTTP library put into its message.
        return text.replace(self.bot.token, "<token>")


# A send is answered with the whole message, and the outbox keeps only its id: these read
# the answer as a MessageId. Building the Message (chat, sender, entities, a model each)
# took a tenth of the sender's time per message.
class SendMessageForId(SendMessage):
    __returning__ = MessageId  # type: ignore[assignment]  # the answer read for its id


class SendPhotoForId(SendPhoto):
    __returning__ = MessageId  # type: ignore[assignment]  # the answer read for its id


class SendDocumentForId(SendDocument):
    __returning__ = MessageId  # type: ignore[assignment]  # the answer read for its id


class OutboxSession(AiohttpSession):
    """aiogram's aiohttp session, sending a method's parameters as one JSON body instead of
    a form: the Bot API takes either (https://core.telegram.org/bots/api#making-requests),
    and building the form took a tenth of the sender's time per message. An upload still
    goes as a form."""

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,  # noqa: ASYNC109  # aiogram's signature
    ) -> TelegramType:
        parameters: dict[str, Any] = {}
        files: dict[str, InputFile] = {}
        for key, value in method.model_dump(warnings=False, exclude_none=True).items():
            prepared = self.prepare_value(value, bot=bot, files=files, _dumps_json=False)
            if prepared is not None and prepared != "":  # what the form leaves out
                parameters[key] = prepared
        if files:
            return await super().make_request(bot, method, timeout)
        session = await self.create_session()
        url = self.api.api_url(token=bot.token, method=method.__api_method__)
        try:
            async with session.post(
                url,
                data=self.json_dumps(parameters).encode(),
                headers=JSON_BODY,
                timeout=ClientTimeout(total=self.timeout if timeout is None else timeout),
            ) as response:
                content = await response.read()
        except TimeoutError as error:
            raise TelegramNetworkError(method=method, message="Request timeout error") from error
        except ClientError as error:
            message = f"{type(error).__name__}: {error}"
            raise TelegramNetworkError(method=method, message=message) from error
        # A garbled answer then fails as JSON: a decode error, which is retried.
        text = content.decode(errors="replace")
        answer = self.check_response(
            bot=bot, method=method, status_code=response.status, content=text
        )
        return cast(TelegramType, answer.result)


def _bot_of_its_own(bot: Bot, connections: int) -> tuple[Bot, bool]:
    """A Bot like ``bot`` (server, token, timeout, defaults) on a session of its own, without
    the request middlewares, holding up to ``connections`` connections.

    The composition root's session retries a 429 inside the request (``bot/retry.py``);
    here a 429 must pause every send at once, so it has to reach the sender. A separate
    connection pool also keeps a county-wide notice from queueing direct replies.
    """
    session = bot.session
    if not isinstance(session, AiohttpSession):
        return bot, False
    own = OutboxSession(
        api=session.api,
        timeout=session.timeout,
        # Every send encodes its parameters and decodes its answer: orjson does it for a
        # fraction of the standard library's cost.
        json_loads=orjson.loads,
        json_dumps=_json_dumps,
        limit=connections,
    )
    return Bot(bot.token, session=own, default=bot.default), True


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _is_transient(error: Exception) -> bool:
    """A database that is away or busy, rather than one refusing this change."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, OperationalError | InterfaceError | OSError | TimeoutError)


def _method(row: ClaimedMessage, paid: bool | None) -> TelegramMethod[Any]:
    """The Bot API call that sends ``row``, answered with the id of the message sent."""
    payload = row.payload
    common: dict[str, Any] = {
        "chat_id": row.chat_id,
        "reply_markup": _markup(payload.get("reply_markup")),
        "allow_paid_broadcast": paid,
    }
    caption = payload.get("caption")
    caption_mode = "HTML" if caption is not None else None
    if row.kind is MessageKind.text:
        return SendMessageForId(text=payload["text"], parse_mode="HTML", **common)
    if row.kind is MessageKind.photo:
        return SendPhotoForId(
            photo=payload["file_id"], caption=caption, parse_mode=caption_mode, **common
        )
    if row.kind is MessageKind.document:
        return SendDocumentForId(
            document=payload["file_id"], caption=caption, parse_mode=caption_mode, **common
        )
    return CopyMessage(
        from_chat_id=payload["from_chat_id"],
        message_id=payload["message_id"],
        caption=caption,
        parse_mode=caption_mode,
        **common,
    )


def _markup(data: dict[str, Any] | None) -> Markup | None:
    if data is None:
        return None
    if "inline_keyboard" in data:
        return InlineKeyboardMarkup.model_validate(data)
    if "keyboard" in data:
        return ReplyKeyboardMarkup.model_validate(data)
    if "remove_keyboard" in data:
        return ReplyKeyboardRemove.model_validate(data)
    if "force_reply" in data:
        return ForceReply.model_validate(data)
    raise ValueError(f"unknown reply_markup with keys {sorted(data)}")


def _after(seconds: float) -> datetime:
    return utcnow() + timedelta(seconds=seconds)
