"""The last line: any exception in a handler is logged and the user gets a plain apology."""

import logging

from aiogram import Router
from aiogram.types import ErrorEvent

from bot.i18n import t

logger = logging.getLogger(__name__)


async def apologise(event: ErrorEvent) -> bool:
    logger.exception("update %s failed", event.update.update_id, exc_info=event.exception)
    text = t("errors.generic")
    update = event.update
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(text, show_alert=True)
        elif update.message is not None:
            await update.message.answer(text)
    except Exception:
        logger.exception("could not tell the user about the failure")
    return True


def setup() -> Router:
    """This feature's router, new on every call (a test or a second dispatcher gets its own)."""
    router = Router(name=__name__)
    router.errors.register(apologise)
    return router
