"""A sender killed at any moment loses nothing, and only its sends in flight may repeat.

The sender runs in child processes (``child()`` below) sharing the test's database; the
emulator stays in the test process and counts what each recipient got. The first child is
killed with SIGKILL mid-broadcast, so nothing gets the chance to clean up; the second
finishes. Both start together (importing aiogram takes seconds), the second waiting for
its turn.
"""

import asyncio
import os
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config_sections import OutboxConfig
from models.db import create_engine, create_session_factory
from models.outbox.delivery import outstanding
from models.outbox.table import enqueue
from scheduler.sender import OutboxSender
from tests.emulator import Fault, Limits, TelegramEmulator
from tests.fixtures import VerbatimRenderer, say

TOKEN = "123456:TEST-wuji-crash"
SCALE = 5.0
RECIPIENTS = range(20_001, 20_301)
CONCURRENCY = 8
KILL_AFTER = (120,)  # delivered messages at which a child is killed
ROOT = Path(__file__).resolve().parent.parent


def child() -> None:
    """A sender process: ``python -c 'from tests.test_sender_crash import child; child()'``."""
    asyncio.run(_child())


async def _child() -> None:
    engine = create_engine(os.environ["OUTBOX_DATABASE_URL"])
    api = TelegramAPIServer.from_base(os.environ["OUTBOX_API_SERVER"])
    bot = Bot(TOKEN, session=AiohttpSession(api=api, timeout=5))
    config = OutboxConfig(
        rate_per_s=28 * SCALE,
        private_chat_per_s=SCALE,
        group_chat_per_min=20 * SCALE,
        concurrency=CONCURRENCY,
        poll_interval_s=0.05,
    )
    sender = OutboxSender(create_session_factory(engine), bot, config, renderer=VerbatimRenderer())
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    try:
        if os.environ.get("OUTBOX_UNTIL_IDLE"):
            await sender.run_until_idle(60)
        else:
            await sender.start()
            await asyncio.Event().wait()  # until killed
    finally:
        await bot.session.close()
        await engine.dispose()


async def spawn_child(
    db_url: str, emulator: TelegramEmulator, log: Path, until_idle: bool
) -> asyncio.subprocess.Process:
    """A child that has imported everything and waits for a line on stdin to start."""
    env = {
        **os.environ,
        "OUTBOX_DATABASE_URL": db_url,
        "OUTBOX_API_SERVER": emulator.base_url,
        "PYTHONPATH": str(ROOT),
    }
    if until_idle:
        env["OUTBOX_UNTIL_IDLE"] = "1"
    with log.open("ab") as errors:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "from tests.test_sender_crash import child; child()",
            cwd=ROOT,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=errors,
        )


async def go(process: asyncio.subprocess.Process) -> None:
    assert process.stdout is not None and process.stdin is not None
    assert await asyncio.wait_for(process.stdout.readline(), 60) == b"ready\n"
    process.stdin.write(b"go\n")
    await process.stdin.drain()


def received(emulator: TelegramEmulator) -> Counter[int]:
    return Counter(
        request.params["chat_id"]
        for request in emulator.requests
        if request.method == "sendMessage" and request.status == 200
    )


def delivered_at_least(emulator: TelegramEmulator, count: int) -> Callable[[], bool]:
    return lambda: sum(received(emulator).values()) >= count


async def test_a_killed_sender_loses_nothing_and_repeats_only_its_sends_in_flight(
    db_url: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    log = tmp_path / "children.log"
    async with TelegramEmulator(token=TOKEN, limits=Limits(time_scale=SCALE)) as emulator:
        for user_id in RECIPIENTS:
            emulator.user(user_id).state.started = True
        # Some answers come late, so that a kill finds sends delivered but not recorded.
        emulator.inject(Fault("timeout", method="sendMessage", times=40, delay=0.2))
        async with create_session_factory(engine)() as session:
            await enqueue(
                session,
                [say(user_id, f"通知 {user_id}", source="notice:1") for user_id in RECIPIENTS],
            )
            await session.commit()

        children = [
            await spawn_child(db_url, emulator, log, until_idle=index == len(KILL_AFTER))
            for index in range(len(KILL_AFTER) + 1)
        ]
        try:
            for process, threshold in zip(children, KILL_AFTER, strict=False):
                await go(process)
                await emulator.wait_until(
                    delivered_at_least(emulator, threshold),
                    timeout=30,
                    message=f"the child did not get to {threshold} sends; see {log}",
                )
                process.kill()  # SIGKILL: no finally blocks, no graceful stop
                await process.wait()
            in_flight = sum(received(emulator).values())
            await go(children[-1])
            assert await asyncio.wait_for(children[-1].wait(), 60) == 0, log.read_text()
        finally:
            for process in children:
                if process.returncode is None:
                    process.kill()
                    await process.wait()

        counts = received(emulator)
        lost = [user_id for user_id in RECIPIENTS if counts[user_id] == 0]
        repeats = sum(counts.values()) - len(RECIPIENTS)
        assert lost == []
        assert 0 <= repeats <= CONCURRENCY * len(KILL_AFTER), f"{repeats} repeated"
        assert in_flight < len(RECIPIENTS), "the kills came too late to test anything"
        async with create_session_factory(engine)() as session:
            assert await outstanding(session) == 0
