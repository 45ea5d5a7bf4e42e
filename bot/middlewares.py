"""Outer middlewares: each update handled once, one database session per update, and the
member behind it."""

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.types import TelegramObject, Update, User
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.fsm_storage import commit_fsm_writes, update_session
from bot.member_cache import MemberCache, detached_copy
from models.messages import MessagesWaiting
from models.outbox.table import QUEUED
from models.updates import (
    KEEP_HANDLED_UPDATES,
    SERVES,
    AlreadyHandled,
    claim_pending,
    claim_with_first_commit,
    drop_claim,
    purge_handled_updates,
    release_update,
    was_handled,
)

logger = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class NulMiddleware(BaseMiddleware):
    """A NUL character in a message's text or caption becomes U+FFFD before any handler sees
    it: PostgreSQL refuses NUL in text, so an alert, a note or a path carrying one would
    fail its statement (one UTF-16 unit each, so entity offsets stay right)."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        message = event.message if isinstance(event, Update) else None
        if message is not None and "\x00" in (message.text or "") + (message.caption or ""):
            cleaned = {
                field: value.replace("\x00", "\ufffd")
                for field in ("text", "caption")
                if isinstance(value := getattr(message, field), str)
            }
            event = event.model_copy(update={"message": message.model_copy(update=cleaned)})
        return await handler(event, data)


class OnceMiddleware(BaseMiddleware):
    """Skips an update that was handled before: Telegram delivers one again when it missed
    the answer to a webhook request, and polling fetches it again after a stop before its
    offset was confirmed.

    It runs inside ``DbSessionMiddleware`` and aiogram's FSM middleware (so inside the
    user's lock, and the question "handled before?" rides on the update's first read, the
    conversation state's: ``models.updates.was_handled``), and claims the update_id in the
    update's own first commit (``models.updates.claim_with_first_commit``): the claim is
    committed with the first of the handler's effects, or, when the handler wrote nothing,
    by itself once the handler is done; never in a transaction of its own before the
    handler. So a delivery that crashes before any commit leaves no claim, and its
    redelivery is handled. Of two deliveries, a second arriving once the first is claimed is
    skipped at a read; two of one user in this process at the same time, at that read once
    the first is done (the user's lock); two without a user in this process at the same
    time, at the second's start; two in two processes at once, at the second's first commit,
    which fails and writes nothing (``AlreadyHandled``). A handler that raises after its
    first commit gives the claim back, so that a redelivery is
    handled. Claims older than ``keep`` are purged at most once per ``purge_every_s``
    (``models.updates.purge_handled_updates``).
    """

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        keep: timedelta = KEEP_HANDLED_UPDATES,
        purge_every_s: float = 3600.0,
    ) -> None:
        self.session_factory = session_factory
        self.keep = keep
        self.purge_every_s = purge_every_s
        self._next_purge = 0.0
        self._in_flight: set[tuple[int, int]] = set()

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        bot: Bot | None = data.get("bot")
        if not isinstance(event, Update) or bot is None:
            return await handler(event, data)
        key = (bot.id, event.update_id)
        session: AsyncSession = data["session"]
        if key in self._in_flight:
            logger.info("update %s was delivered again; skipped", event.update_id)
            return None
        # Marked before the first await, so that a second delivery arriving meanwhile sees it.
        self._in_flight.add(key)
        claimed = False
        try:
            if await was_handled(session, *key):
                logger.info("update %s was delivered again; skipped", event.update_id)
                return None
            claim_with_first_commit(session, *key)
            claimed = True
            result = await handler(event, data)
            if claim_pending(session):
                # Nothing committed: the claim alone, without what the handler left.
                await session.rollback()
                await session.commit()
        except AlreadyHandled:
            drop_claim(session)
            await session.rollback()
            logger.info("update %s was delivered again; skipped", event.update_id)
            return None
        except Exception:
            if claim_pending(session):
                drop_claim(session)
            elif claimed:
                await self._release(*key)
            raise
        finally:
            self._in_flight.discard(key)
        if time.monotonic() >= self._next_purge:
            self._next_purge = time.monotonic() + self.purge_every_s
            await self._purge()
        return result

    async def _purge(self) -> None:
        try:
            async with self.session_factory() as session:
                await purge_handled_updates(session, self.keep)
        except Exception:
            logger.exception("could not purge handled updates")

    async def _release(self, bot_id: int, update_id: int) -> None:
        try:
            async with self.session_factory() as session:
                await release_update(session, bot_id, update_id)
        except Exception:
            logger.exception("could not release update %s for a redelivery", update_id)


class DbSessionMiddleware(BaseMiddleware):
    """Opens the session that every handler of this update receives as ``session``.

    Domain functions own their commits; anything left uncommitted is rolled back here. When
    the update queued messages, ``messages_waiting`` hears of it once the session closes,
    so that they go out at once rather than at the sender's next look. It runs before
    aiogram's FSM middleware and ``OnceMiddleware``, and the database FSM storage works through it
    (``bot.fsm_storage.update_session``): one session, one pool checkout per update.
    """

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        messages_waiting: MessagesWaiting | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.messages_waiting = messages_waiting

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        async with self.session_factory() as session:
            bot: Bot | None = data.get("bot")
            if isinstance(event, Update) and bot is not None:
                session.info[SERVES] = (bot.id, event.update_id)
            data["session"] = session
            token = update_session.set(session)
            try:
                return await handler(event, data)
            finally:
                update_session.reset(token)
                if session.info.get(QUEUED) and self.messages_waiting is not None:
                    self.messages_waiting.wake()


class FsmWritesMiddleware(BaseMiddleware):
    """Commits the conversation state the update changed and no domain commit carried,
    inside aiogram's per-user lock (this runs after its FSM middleware), so that the
    user's next update reads it. A handler that fails keeps its state changes, as the
    storage writing at once did."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        session: AsyncSession = data["session"]
        try:
            result = await handler(event, data)
        except BaseException:
            await session.rollback()
            await commit_fsm_writes(session)
            raise
        await commit_fsm_writes(session)
        return result


class MemberMiddleware(BaseMiddleware):
    """Loads the member record of the user behind the update (``member``, or None), from
    the cache when it holds it, else with one read; no write."""

    def __init__(self, cache: MemberCache | None = None) -> None:
        self.cache = cache or MemberCache()

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        session: AsyncSession = data["session"]
        member = await self.cache.member(session, user.id) if user else None
        data["member"] = member
        try:
            return await handler(event, data)
        except Exception:
            if member is not None:
                # The failed update's session is rolled back next, which detaches and expires
                # the member: the error path (an apology in the member's language) gets a copy
                # that needs no session.
                data["member"] = detached_copy(member)
            raise
