"""End-to-end fixtures: the real application, long polling a Telegram emulator on loopback."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import pytest
from pydantic import SecretStr

from bot.app import Application
from bot.config import Config
from tests.emulator import Limits, TelegramEmulator

ADMIN_ID = 900_001
BOT_TOKEN = "123456:TEST-wuji-token-for-the-emulator"
TIME_SCALE = 10.0


@pytest.fixture
async def emulator() -> AsyncIterator[TelegramEmulator]:
    # Telegram's own limits, with time passing ten times faster so tests stay quick.
    async with TelegramEmulator(token=BOT_TOKEN, limits=Limits(time_scale=TIME_SCALE)) as emulator:
        yield emulator


@pytest.fixture
def config(emulator: TelegramEmulator, db_url: str) -> Config:
    config = Config()
    config.telegram.token = SecretStr(BOT_TOKEN)
    config.telegram.api_server = emulator.base_url
    config.telegram.request_timeout_s = 5
    config.database.url = db_url
    config.admins.telegram_ids = [ADMIN_ID]
    # The outbox keeps Telegram's pace, in the emulator's faster time.
    config.outbox.rate_per_s *= TIME_SCALE
    config.outbox.private_chat_per_s *= TIME_SCALE
    config.outbox.group_chat_per_min *= TIME_SCALE
    config.outbox.poll_interval_s = 0.1
    return config


@asynccontextmanager
async def polling_bot(config: Config) -> AsyncIterator[Application]:
    """One bot process's life: built, migrated, polling until the block ends."""
    application = Application.build(config)
    await application.prepare()
    await application.start_workers()
    polling = asyncio.create_task(
        application.dispatcher.start_polling(
            application.bot, handle_signals=False, close_bot_session=False, polling_timeout=1
        )
    )
    try:
        yield application
    finally:
        with suppress(RuntimeError):
            await application.dispatcher.stop_polling()
        with suppress(asyncio.CancelledError):
            await asyncio.wait_for(polling, timeout=10)
        await application.close()


@pytest.fixture
async def application(config: Config, engine: object) -> AsyncIterator[Application]:
    """The bot, polling; ``engine`` makes sure the test database is fresh and migrated."""
    async with polling_bot(config) as application:
        yield application
