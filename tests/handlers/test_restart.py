"""A conversation in progress survives a restart of the bot."""

import os

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Config
from models.status import county_counts
from tests.emulator import TelegramEmulator
from tests.fixtures import EXAMPLES
from tests.handlers.fixtures import ADMIN_ID, polling_bot


async def restart_in_the_middle_of_an_import(
    emulator: TelegramEmulator,
    config: Config,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    admin = emulator.user(user_id=ADMIN_ID, first_name="指挥部", language_code="en")
    async with polling_bot(config):
        await admin.send("/import")
        assert "Send the roster file" in (await admin.next_message()).text

    async with polling_bot(config):
        await admin.send_document("households.csv", (EXAMPLES / "households.csv").read_bytes())
        assert "imported" in (await admin.next_message()).text
    async with session_factory() as session:
        assert (await county_counts(session))["households"] > 0


async def test_conversation_survives_a_restart_with_database_storage(
    emulator: TelegramEmulator,
    config: Config,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await restart_in_the_middle_of_an_import(emulator, config, session_factory)


async def test_conversation_survives_a_restart_with_redis_storage(
    emulator: TelegramEmulator,
    config: Config,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    from redis.asyncio import Redis

    redis_url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    async with Redis.from_url(redis_url) as redis:
        await redis.flushdb()
    config.redis.url = redis_url
    await restart_in_the_middle_of_an_import(emulator, config, session_factory)
    async with Redis.from_url(redis_url) as redis:
        assert await redis.dbsize() == 0  # the finished conversation left nothing behind
