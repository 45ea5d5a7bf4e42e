"""The last line: any exception in a handler is logged and the user gets a plain apology."""

import logging

from aiogram import Bot, Router
from aiogram.types import CallbackQuery, ErrorEvent

from bot.i18n import t

logger = logging.getLogger(__name__)


async def apologise(event: ErrorEvent, bot: Bot) -> bool:
    logger.exception("update %s failed", event.update.update_id, exc_info=event.exception)
    text = t("errors.generic")
    update = event.update
    try:
        if update.callback_query is not None:
            await _apologise_for_button(update.callback_query, bot, text)
        elif update.message is not None:
            await update.message.answer(text)
    except Exception:
        logger.exception("could not tell the user about the failure")
    return True


async def _apologise_for_button(callback: CallbackQuery, bot: Bot, text: str) -> None:
    """An alert on the button; when the handler had answered the query already (Telegram
    takes one answer per query) or the query is too old, a message in the chat instead."""
    try:
        if await callback.answer(text, show_alert=True):
            return
    except Exception as error:
        logger.info("could not answer callback %s: %s", callback.id, error)
    message = callback.message
    chat_id = message.chat.id if message is not None else callback.from_user.id
    await bot.send_message(chat_id, text)


def setup() -> Router:
    """This feature's router, new on every call (a test or a second dispatcher gets its own)."""
    router = Router(name=__name__)
    router.errors.register(apologise)
    return router
