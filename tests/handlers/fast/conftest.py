"""The fast tier: the real Dispatcher (every router and middleware, a real database), fed
Update objects directly; the Bot's session records the methods called and answers them
from canned results. No HTTP, no emulator, no polling."""

from collections.abc import AsyncIterator

import pytest
from aiogram import Bot, Dispatcher
from aiogram.utils.i18n import I18n
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import build_dispatcher, build_storage
from bot.config import Config
from bot.i18n import create_i18n
from tests.fixtures import FAST_BOT_TOKEN, recording_bot
from tests.handlers.fixtures import ADMIN_ID


@pytest.fixture
def config(db_url: str) -> Config:
    config = Config()
    config.telegram.token = SecretStr(FAST_BOT_TOKEN)
    config.database.url = db_url
    config.admins.telegram_ids = [ADMIN_ID]
    return config


@pytest.fixture
def i18n(config: Config) -> I18n:
    return create_i18n(config.i18n.default_locale)


@pytest.fixture
async def dispatcher(
    config: Config, session_factory: async_sessionmaker[AsyncSession], i18n: I18n
) -> AsyncIterator[Dispatcher]:
    storage, isolation = build_storage(config, session_factory)
    yield build_dispatcher(config, session_factory, i18n, storage, isolation)
    await storage.close()
    await isolation.close()


@pytest.fixture
async def bot() -> AsyncIterator[Bot]:
    bot = recording_bot()
    yield bot
    await bot.session.close()
