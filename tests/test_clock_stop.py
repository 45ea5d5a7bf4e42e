"""A stop of the clock lets a job already running finish; one that outlasts the wait is
cancelled with one line in the log, never an error with a traceback."""

import asyncio
import logging
from datetime import datetime
from typing import Any, cast

import pytest
from aiogram import Bot
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Config
from bot.i18n import create_i18n
from scheduler import clock as clock_module
from scheduler.clock import Clock
from scheduler.sender import OutboxSender


def a_clock(session_factory: async_sessionmaker[AsyncSession]) -> Clock:
    config = Config()
    # Neither the bot nor the sender is reached by the jobs these tests run.
    return Clock(
        config,
        session_factory,
        cast(Bot, None),
        create_i18n(config.i18n.default_locale),
        cast(OutboxSender, None),
    )


async def run_at_once(clock: Clock, job: Any) -> None:
    assert clock.scheduler is not None
    clock._add(job, "date", run_date=datetime.now(clock.scheduler.timezone), id="probe")
    for _ in range(100):
        if clock._running:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the job never started")


async def test_a_stop_lets_the_running_job_finish(
    session_factory: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    finished: list[bool] = []

    async def probe() -> None:
        await asyncio.sleep(0.3)
        finished.append(True)

    clock = a_clock(session_factory)
    clock.start()
    await run_at_once(clock, probe)
    with caplog.at_level(logging.INFO):
        await clock.stop()
    assert finished == [True]
    assert clock.scheduler is None
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_a_job_outlasting_the_wait_is_cancelled_in_one_line(
    session_factory: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(clock_module, "STOP_WAIT_S", 0.1)

    async def probe() -> None:
        await asyncio.sleep(30)

    clock = a_clock(session_factory)
    clock.start()
    await run_at_once(clock, probe)
    with caplog.at_level(logging.INFO):
        await clock.stop()
        for _ in range(100):  # the cancelled job ends on the loop's next turns
            if not clock._running:
                break
            await asyncio.sleep(0.01)
    assert not clock._running
    assert [r.levelno for r in caplog.records if r.levelno >= logging.WARNING] == [logging.WARNING]
    assert "stopped mid-run" in caplog.text
    assert "Traceback" not in caplog.text and "raised an exception" not in caplog.text
