"""Telling other members about something, each in their own language."""

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.utils.i18n import I18n

from bot.config import Config
from bot.i18n import LOCALES, t
from models.posts import Recipient

logger = logging.getLogger(__name__)


def admins(config: Config) -> list[Recipient]:
    return [Recipient(telegram_id, None) for telegram_id in config.admins.telegram_ids]


async def tell(bot: Bot, recipients: list[Recipient], key: str, **params: object) -> None:
    """Best-effort direct notice; a recipient who cannot be reached is logged, not fatal.

    A parameter may be a function of no arguments: it is called in each recipient's
    language (a post's title, say). Messages that must not be lost go through the outbox.
    """
    i18n = I18n.get_current(no_error=False)
    seen: set[int] = set()
    for recipient in recipients:
        if recipient.telegram_id in seen:
            continue
        seen.add(recipient.telegram_id)
        locale = recipient.locale if recipient.locale in LOCALES else i18n.default_locale
        with i18n.use_locale(locale):
            text = t(
                key,
                **{name: value() if callable(value) else value for name, value in params.items()},
            )
        try:
            await bot.send_message(recipient.telegram_id, text)
        except TelegramAPIError as error:
            logger.warning("could not tell %s (%s): %s", recipient.telegram_id, key, error.message)
