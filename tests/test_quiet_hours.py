"""Quiet hours: at night only alerts leave the outbox; the rest go in the morning."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config_sections import OutboxConfig
from models.alerts import ALERT_PRIORITY
from models.outbox.delivery import claim_due
from models.outbox.table import URGENT_PRIORITY, OutboxMessage, enqueue
from models.quiet_hours import QuietHours
from scheduler.sender import OutboxSender
from tests.emulator import Limits, TelegramEmulator
from tests.fixtures import VerbatimRenderer, say

TOKEN = "123456:TEST-wuji-quiet"
SHANGHAI = ZoneInfo("Asia/Shanghai")
NIGHT = QuietHours(time(22, 0), time(7, 0), SHANGHAI)
# 23:30 and 08:00 in the county.
LATE_EVENING = datetime(2026, 12, 3, 15, 30, tzinfo=UTC)
MORNING = datetime(2026, 12, 4, 0, 0, tzinfo=UTC)


def test_the_night_spans_midnight_in_the_countys_time() -> None:
    def at(hour: int, minute: int = 0) -> datetime:
        return datetime(2026, 12, 3, hour, minute, tzinfo=SHANGHAI)

    assert [NIGHT.hold(at(h)) for h in (21, 22, 23, 0, 3, 6)] == [False] + [True] * 5
    assert NIGHT.hold(at(6, 59)) and not NIGHT.hold(at(7)) and not NIGHT.hold(at(12))
    day_shift = QuietHours(time(12, 0), time(14, 0), SHANGHAI)
    assert day_shift.hold(at(13)) and not day_shift.hold(at(14)) and not day_shift.hold(at(2))


def test_alerts_are_urgent() -> None:
    assert ALERT_PRIORITY >= URGENT_PRIORITY


async def test_at_night_only_urgent_rows_are_claimed(session: AsyncSession) -> None:
    await enqueue(session, [say(1, "reminder"), say(2, "fever", priority=URGENT_PRIORITY)])
    await session.commit()
    (urgent,) = await claim_due(session, 10, urgent_only=True)
    assert urgent.chat_id == 2
    assert [row.chat_id for row in await claim_due(session, 10)] == [1]


@pytest.fixture
async def emulator() -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator(token=TOKEN, limits=Limits(time_scale=10)) as emulator:
        yield emulator


async def test_a_reminder_waits_for_the_morning_and_an_alert_does_not(
    emulator: TelegramEmulator, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    for user_id in (7001, 7002):
        emulator.user(user_id).state.started = True
    async with session_factory() as session:
        await enqueue(
            session, [say(7001, "明早请上报"), say(7002, "发热告警", priority=ALERT_PRIORITY)]
        )
        await session.commit()
    now = LATE_EVENING
    bot = Bot(TOKEN, session=AiohttpSession(api=emulator.api_server, timeout=5))
    config = OutboxConfig(poll_interval_s=0.05, rate_per_s=280, private_chat_per_s=10)
    sender = OutboxSender(
        session_factory,
        bot,
        config,
        renderer=VerbatimRenderer(),
        quiet_hours=NIGHT,
        clock=lambda: now,
    )
    await sender.start()
    try:
        alert = await emulator.user(7002).next_message(timeout=10)
        assert alert.text == "发热告警"
        # Ten of the sender's looks later (one each poll_interval_s), the reminder waits: a
        # message that is not sent can only be shown by letting time pass.
        await asyncio.sleep(10 * config.poll_interval_s)
        async with session_factory() as session:
            statuses = dict(
                (await session.execute(select(OutboxMessage.chat_id, OutboxMessage.status))).all()
            )
        assert statuses == {7001: "pending", 7002: "sent"}
        assert emulator.bot_messages(7001) == []

        now = MORNING
        sender.wake()
        assert (await emulator.user(7001).next_message(timeout=10)).text == "明早请上报"
    finally:
        await sender.stop()
        await bot.session.close()
