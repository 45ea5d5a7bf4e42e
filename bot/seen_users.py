"""Remembers everyone the bot hears from (``models.seen_users``), writing only when someone
is new to this process or shows another name, username or language than last time: not a
write per update."""

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, User
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.i18n import locale_for_language_code
from models.seen_users import record_seen_user

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]

# Users whose last written details this process remembers; past it, it forgets them all
# (each is then written once more when next heard from).
MAX_REMEMBERED = 50_000


class SeenUsersMiddleware(BaseMiddleware):
    def __init__(
        self, session_factory: async_sessionmaker[AsyncSession], default_locale: str
    ) -> None:
        self.session_factory = session_factory
        self.default_locale = default_locale
        self._written: dict[int, tuple[str | None, str, str]] = {}

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        if user is not None and not user.is_bot:
            await self._remember(user)
        return await handler(event, data)

    async def _remember(self, user: User) -> None:
        locale = locale_for_language_code(user.language_code, self.default_locale)
        details = (user.username.lower() if user.username else None, user.full_name, locale)
        if self._written.get(user.id) == details:
            return
        # Its own short transaction, before the update's: the update's handler may then
        # name this user (an admin appointing someone who just wrote /start).
        async with self.session_factory() as session:
            await record_seen_user(session, user.id, details[0], details[1], locale)
        if len(self._written) >= MAX_REMEMBERED:
            self._written.clear()
        self._written[user.id] = details
