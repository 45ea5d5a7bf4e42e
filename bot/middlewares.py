"""Outer middlewares: one database session per update, and the member behind it."""

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, User
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.members import member_by_telegram_id
from models.messages import MessagesWaiting
from models.outbox.table import QUEUED

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class DbSessionMiddleware(BaseMiddleware):
    """Opens the session that every handler of this update receives as ``session``.

    Domain functions own their commits; anything left uncommitted is rolled back here. When
    the update queued messages, ``messages_waiting`` hears of it once the session closes,
    so that they go out at once rather than at the sender's next look.
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
            try:
                return await handler(event, data)
            finally:
                if session.info.get(QUEUED) and self.messages_waiting is not None:
                    self.messages_waiting.wake()


class MemberMiddleware(BaseMiddleware):
    """Loads the member record of the user behind the update (``member``, or None), with one
    read and no write."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        session: AsyncSession = data["session"]
        data["member"] = await member_by_telegram_id(session, user.id) if user else None
        return await handler(event, data)
