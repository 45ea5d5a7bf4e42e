"""End-to-end fixtures: the real application, long polling a Telegram emulator on loopback.

The builders tests share are in ``tests/handlers/fixtures.py``; ``ADMIN_ID``, ``BOT_TOKEN``
and ``polling_bot`` are imported here too for the tests that still look for them here.
"""

from collections.abc import AsyncIterator

import pytest

from bot.app import Application
from bot.config import Config
from tests.emulator import Limits, TelegramEmulator
from tests.fixtures import emulated_config
from tests.handlers.fixtures import ADMIN_ID, BOT_TOKEN, TIME_SCALE, polling_bot

__all__ = ["ADMIN_ID", "BOT_TOKEN", "polling_bot"]


@pytest.fixture
async def emulator() -> AsyncIterator[TelegramEmulator]:
    # Telegram's own limits, with time passing ten times faster so tests stay quick.
    async with TelegramEmulator(token=BOT_TOKEN, limits=Limits(time_scale=TIME_SCALE)) as emulator:
        yield emulator


@pytest.fixture
def config(emulator: TelegramEmulator, db_url: str) -> Config:
    # The outbox keeps Telegram's pace, in the emulator's faster time.
    return emulated_config(emulator, db_url, [ADMIN_ID])


@pytest.fixture
async def application(config: Config, engine: object) -> AsyncIterator[Application]:
    """The bot, polling; ``engine`` makes sure the test database is fresh and migrated."""
    async with polling_bot(config) as application:
        yield application
