"""SQLite's writers queue in process for the single writer instead of sleeping in SQLite's
busy handler: each takes the engine's write lock before its first write and gives it back
when its transaction ends, however it ends."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, exc, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from models.db import create_engine, create_session_factory

SHORT_MS = 300


def quick_failing_engine(path: Path, timeout_ms: int) -> AsyncEngine:
    """A SQLite engine whose connections would fail at once on a busy database (busy
    handler off), so that only the in-process lock keeps writers from colliding."""
    engine = create_engine(f"sqlite+aiosqlite:///{path}", busy_timeout_ms=timeout_ms)

    @event.listens_for(engine.sync_engine, "connect")
    def no_busy_handler(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=0")
        cursor.close()

    return engine


@pytest.fixture(params=[SHORT_MS], ids=["short"])
async def lite(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[AsyncEngine]:
    engine = quick_failing_engine(tmp_path / "lock.db", request.param)
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE marks (n INTEGER NOT NULL)"))
    yield engine
    await engine.dispose()


@pytest.mark.parametrize("lite", [10_000], ids=["patient"], indirect=True)
async def test_many_writers_holding_their_transactions_all_commit(lite: AsyncEngine) -> None:
    factory = create_session_factory(lite)

    async def writer(n: int) -> None:
        async with factory() as session:
            await session.execute(select(func.count()).select_from(text("marks")))
            await session.execute(text("INSERT INTO marks (n) VALUES (:n)"), {"n": n})
            await asyncio.sleep(0.005)  # other writers run meanwhile
            await session.execute(text("UPDATE marks SET n = n + 0 WHERE n = :n"), {"n": n})
            await session.commit()

    await asyncio.gather(*(writer(n) for n in range(40)))
    async with factory() as session:
        assert await session.scalar(text("SELECT count(*) FROM marks")) == 40


async def test_readers_do_not_wait_for_the_writer(lite: AsyncEngine) -> None:
    factory = create_session_factory(lite)
    async with factory() as writing, factory() as reading:
        await writing.execute(text("INSERT INTO marks (n) VALUES (1)"))
        async with asyncio.timeout(1):
            assert await reading.scalar(text("SELECT count(*) FROM marks")) == 0
        await writing.commit()


async def test_a_transaction_ended_any_way_lets_the_next_writer_in(lite: AsyncEngine) -> None:
    factory = create_session_factory(lite)

    async def write_and_commit() -> None:
        async with factory() as session:
            await session.execute(text("INSERT INTO marks (n) VALUES (2)"))
            await session.commit()

    async with factory() as session:  # rolled back
        await session.execute(text("INSERT INTO marks (n) VALUES (1)"))
        await session.rollback()
    await write_and_commit()
    async with factory() as session:  # closed without committing
        await session.execute(text("INSERT INTO marks (n) VALUES (1)"))
    await write_and_commit()
    async with factory() as session:  # a failing statement, then a rollback
        with pytest.raises(exc.IntegrityError):
            await session.execute(text("INSERT INTO marks (n) VALUES (NULL)"))
        await session.rollback()
    await write_and_commit()
    async with lite.begin() as connection:  # Core, outside any session
        await connection.execute(text("INSERT INTO marks (n) VALUES (3)"))
    await write_and_commit()
    async with factory() as session:
        assert await session.scalar(text("SELECT count(*) FROM marks")) == 5


async def test_a_writer_kept_waiting_too_long_fails_as_sqlite_would(lite: AsyncEngine) -> None:
    factory = create_session_factory(lite)
    async with factory() as holding, factory() as waiting:
        await holding.execute(text("INSERT INTO marks (n) VALUES (1)"))
        with pytest.raises(exc.OperationalError, match="database is locked"):
            await waiting.execute(text("INSERT INTO marks (n) VALUES (2)"))
        await waiting.rollback()
        await holding.commit()
        await waiting.execute(text("INSERT INTO marks (n) VALUES (2)"))
        await waiting.commit()
