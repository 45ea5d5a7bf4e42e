"""Direct replies honour Telegram's flood control: on 429 the request waits ``retry_after``
and goes again. aiogram itself never retries
(https://docs.aiogram.dev/en/latest/api/session/middleware.html)."""

import asyncio
import logging
from typing import TYPE_CHECKING

from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.methods import Response

logger = logging.getLogger(__name__)


class RetryAfterMiddleware(BaseRequestMiddleware):
    def __init__(self, attempts: int = 5) -> None:
        self.attempts = attempts

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: "Bot",
        method: TelegramMethod[TelegramType],
    ) -> "Response[TelegramType]":
        for _attempt in range(self.attempts - 1):
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as error:
                logger.info(
                    "%s: flood control, waiting %ss", type(method).__name__, error.retry_after
                )
                await asyncio.sleep(error.retry_after)
        return await make_request(bot, method)
