"""The commands menu Telegram shows, per scope and language."""

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
)
from aiogram.utils.i18n import I18n

from bot.config import Config
from bot.i18n import LOCALES

logger = logging.getLogger(__name__)

PRIVATE_COMMANDS = (
    "start",
    "me",
    "report",
    "vacancies",
    "claims",
    "notice",
    "notices",
    "alert",
    "needs",
    "late",
    "status",
    "export",
    "console",
    "tree",
    "whois",
    "mylead",
    "leave",
    "help",
    "lang",
    "cancel",
)
GROUP_COMMANDS = ("vacancies", "progress", "bind", "unbind", "help")
ADMIN_COMMANDS = (*PRIVATE_COMMANDS, "import", "invite", "assign", "revoke", "audit")


# In the menu only when the console is served (``[console] enabled``).
CONSOLE = "console"


def _commands(
    i18n: I18n, locale: str, names: tuple[str, ...], config: Config | None = None
) -> list[BotCommand]:
    console = config is not None and config.console.enabled
    return [
        BotCommand(command=name, description=i18n.gettext(f"command.{name}", locale=locale))
        for name in names
        if name != CONSOLE or console
    ]


async def publish_commands(bot: Bot, config: Config, i18n: I18n) -> None:
    for locale in LOCALES:
        # Telegram keys menus by two-letter language code; "zh" covers every Chinese client.
        language_code = "zh" if locale == "zh_Hans" else "en"
        await bot.set_my_commands(
            _commands(i18n, locale, PRIVATE_COMMANDS, config),
            scope=BotCommandScopeAllPrivateChats(),
            language_code=language_code,
        )
        await bot.set_my_commands(
            _commands(i18n, locale, GROUP_COMMANDS),
            scope=BotCommandScopeAllGroupChats(),
            language_code=language_code,
        )
        for admin_id in config.admins.telegram_ids:
            try:
                await bot.set_my_commands(
                    _commands(i18n, locale, ADMIN_COMMANDS, config),
                    scope=BotCommandScopeChat(chat_id=admin_id),
                    language_code=language_code,
                )
            except TelegramBadRequest as error:
                # An admin who has never opened the bot has no chat yet.
                logger.warning("no admin menu for %s: %s", admin_id, error.message)
    default = config.i18n.default_locale
    await bot.set_my_commands(
        _commands(i18n, default, PRIVATE_COMMANDS, config),
        scope=BotCommandScopeAllPrivateChats(),
    )
    await bot.set_my_commands(
        _commands(i18n, default, GROUP_COMMANDS), scope=BotCommandScopeAllGroupChats()
    )
