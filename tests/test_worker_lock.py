"""One worker at a time: on PostgreSQL the second waits and takes over when the first dies;
a web replica never runs the clock or the sender."""

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from bot.app import Application
from bot.worker_lock import WORKER_LOCK_KEY, WorkerLock
from models.db import create_engine
from models.messages import Text
from models.outbox.table import OutgoingMessage, enqueue
from tests.emulator import Limits, TelegramEmulator
from tests.fixtures import emulated_config


async def test_a_second_worker_waits_then_takes_over(engine: AsyncEngine, db_url: str) -> None:
    # On SQLite a lock on a file beside the database (web replicas and a worker sharing one
    # file on one machine); on PostgreSQL an advisory lock.
    first = WorkerLock(engine, retry_s=0.05)
    await first.acquire()
    other_engine = create_engine(db_url)  # another process's connections
    second = WorkerLock(other_engine, retry_s=0.05)
    try:
        waiting = asyncio.create_task(second.acquire())
        await asyncio.sleep(0.3)
        assert not waiting.done()
        await first.release()  # the first worker dies: its connection or file closes
        await asyncio.wait_for(waiting, timeout=5)
    finally:
        await second.release()
        await other_engine.dispose()


def test_on_sqlite_the_worker_lock_is_freed_when_its_process_dies_however(
    tmp_path: Path,
) -> None:
    database = tmp_path / "wuji.db"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_LOCK, f"sqlite+aiosqlite:///{database}"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert not asyncio.run(_acquired_within(database, 0.3))
        holder.kill()  # no clean-up runs: SIGKILL
        holder.wait(timeout=10)
        assert asyncio.run(_acquired_within(database, 5))
    finally:
        holder.kill()


HOLD_THE_LOCK = """
import asyncio, sys
from bot.worker_lock import WorkerLock
from models.db import create_engine

async def main():
    lock = WorkerLock(create_engine(sys.argv[1]))
    await lock.acquire()
    print("held", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


async def _acquired_within(database: Path, seconds: float) -> bool:
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    lock = WorkerLock(engine, retry_s=0.05)
    try:
        await asyncio.wait_for(lock.acquire(), timeout=seconds)
        return True
    except TimeoutError:
        return False
    finally:
        await lock.release()
        await engine.dispose()


async def test_a_worker_that_loses_its_connection_stops_working(
    engine: AsyncEngine, db_url: str
) -> None:
    lock = WorkerLock(engine, check_s=0.05)
    await lock.acquire()
    if not lock.can_be_lost:
        # SQLite: a lock on a file cannot be lost while its process lives.
        assert engine.dialect.name == "sqlite"
        return
    stopped = asyncio.Event()

    async def lost() -> None:
        stopped.set()

    watching = asyncio.create_task(lock.watch(lost))
    other_engine = create_engine(db_url)
    try:
        async with other_engine.connect() as connection:
            # The database drops the worker's connection (a restart, a network cut).
            await connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND objid = :key"
                ),
                {"key": WORKER_LOCK_KEY},
            )
        await asyncio.wait_for(stopped.wait(), timeout=5)
        await asyncio.wait_for(watching, timeout=5)
    finally:
        await lock.release()
        await other_engine.dispose()


@pytest.mark.parametrize("role", ["web", "worker"])
async def test_each_role_runs_only_its_part(
    role: str, db_url: str, engine: AsyncEngine, session_factory: async_sessionmaker
) -> None:
    async with TelegramEmulator(token="123456:TEST-wuji-roles", limits=Limits()) as emulator:
        emulator.user(8101).state.started = True
        config = emulated_config(emulator, db_url, [])
        config.role = role  # type: ignore[assignment]  # the Literal is checked on load
        async with session_factory() as session:
            reminder = Text("notice.reminder", {"id": 7})
            await enqueue(session, [OutgoingMessage(chat_id=8101, content=reminder)])
            await session.commit()
        application = Application.build(config)
        try:
            await application.start_workers()
            if role == "worker":
                message = await emulator.user(8101).next_message(timeout=10)
                assert "#7" in message.text
            else:
                await asyncio.sleep(1.0)  # a sender would have sent it by now
                assert emulator.bot_messages(8101) == []
                assert not application.sender.running
        finally:
            await application.close()
