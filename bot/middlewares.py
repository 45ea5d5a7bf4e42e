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
    claim_update,
    purge_handled_updates,
    release_update,
)

logger = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class OnceMiddleware(BaseMiddleware):
    """Skips an update that was handled before: Telegram delivers one again when it missed
    the answer to a webhook request, and polling fetches it again after a stop before its
    offset was confirmed.

    The update_id is claimed before anything else, in its own short transaction, so that
    of two deliveries (even to two processes) exactly one goes on. A handler that raises
    gives its claim back, so that a redelivery is handled. Claims older than ``keep`` are
    purged at most once per ``purge_every_s`` (``models.updates.purge_handled_updates``).
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

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        bot: Bot | None = data.get("bot")
        if not isinstance(event, Update) or bot is None:
            return await handler(event, data)
        async with self.session_factory() as session:
            claimed = await claim_update(session, bot.id, event.update_id)
            if claimed and time.monotonic() >= self._next_purge:
                self._next_purge = time.monotonic() + self.purge_every_s
                await purge_handled_updates(session, self.keep)
        if not claimed:
            logger.info("update %s was delivered again; skipped", event.update_id)
            return None
        try:
            return await handler(event, data)
        except Exception:
            await self._release(bot.id, event.update_id)
            raise

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
    aiogram's FSM middleware, and the database FSM storage works through it
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
