from aiogram.filters import Filter
from aiogram.types import TelegramObject, User

from bot.config import Config


class IsAdmin(Filter):
    """The county command centre: Telegram ids listed under ``[admins]``."""

    async def __call__(
        self, event: TelegramObject, event_from_user: User | None, config: Config
    ) -> bool:
        return event_from_user is not None and config.is_admin(event_from_user.id)
