"""Quiet hours hold the ladder: a step that fires at night is queued at once, and waits in
the outbox until the morning, when the real sender delivers it through the emulator."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.utils.i18n import I18n
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config_sections import OutboxConfig
from handlers.outbound import TelegramRenderer
from models.chase import Ladder, LadderStep
from models.chase_sweep import sweep
from models.forms import Form
from models.org import Level
from models.outbox.table import OutboxMessage
from models.quiet_hours import QuietHours
from models.rounds import RoundSchedule, open_round
from scheduler.sender import OutboxSender
from tests.emulator import Limits, TelegramEmulator
from tests.test_chase import DAY, UNIT_1, county, form, i18n, report_all_but

__all__ = ["form", "i18n"]
TOKEN = "123456:TEST-wuji-chase-quiet"
SHANGHAI = ZoneInfo("Asia/Shanghai")
NIGHT = QuietHours(time(22, 0), time(7, 0), SHANGHAI)
# An evening round: due at 22:30, inside the night.
EVENING = RoundSchedule(time(7), time(22, 30), time(7), "Asia/Shanghai")
NEXT_DAY = DAY + timedelta(days=1)
DUE = datetime.combine(NEXT_DAY, time(22, 30), tzinfo=SHANGHAI).astimezone(UTC)
MORNING = datetime.combine(NEXT_DAY + timedelta(days=1), time(7, 0), tzinfo=SHANGHAI)
# The step at the due time, to the unit's lead (11) and officer (12).
LADDER = Ladder(steps=(LadderStep(timedelta(0), Level.unit),), timezone="Asia/Shanghai")


@pytest.fixture
async def emulator() -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator(token=TOKEN, limits=Limits(time_scale=10)) as emulator:
        yield emulator


async def test_a_step_firing_at_night_waits_in_the_outbox_until_seven(
    emulator: TelegramEmulator,
    session: AsyncSession,
    session_factory: async_sessionmaker[AsyncSession],
    form: Form,
    i18n: I18n,
) -> None:
    await county(session, form)
    evening_round = await open_round(session, EVENING, form, NEXT_DAY)
    await report_all_but(session, evening_round.id, UNIT_1)
    for reader in (11, 12):
        emulator.user(reader).state.started = True
    fired = await sweep(session, LADDER, DUE)
    assert [(step.step, step.messages) for step in fired.fired] == [("unit+0", 2)]

    now = DUE + timedelta(minutes=1)
    bot = Bot(TOKEN, session=AiohttpSession(api=emulator.api_server, timeout=5))
    config = OutboxConfig(poll_interval_s=0.05, rate_per_s=280, private_chat_per_s=10)
    sender = OutboxSender(
        session_factory,
        bot,
        config,
        renderer=TelegramRenderer(i18n),
        quiet_hours=NIGHT,
        clock=lambda: now,
    )
    await sender.start()
    try:
        # Ten of the sender's looks at night: a message not sent shows only as time passing.
        await asyncio.sleep(10 * config.poll_interval_s)
        async with session_factory() as fresh:
            statuses = (await fresh.scalars(select(OutboxMessage.status))).all()
        assert statuses == ["pending", "pending"]
        assert emulator.bot_messages(11) == [] and emulator.bot_messages(12) == []

        now = MORNING
        sender.wake()
        for reader_id in (11, 12):
            told = await emulator.user(reader_id).next_message(timeout=10)
            assert "县卫健局片区/阳光小区/1号楼/1单元" in (told.text or "")
            assert "22:30" in (told.text or "")
    finally:
        await sender.stop()
        await bot.session.close()
