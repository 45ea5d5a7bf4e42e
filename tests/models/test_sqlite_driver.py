"""SQLite's statements go to aiosqlite's thread once each, a write transaction's run on the
event loop, and they behave as the DBAPI says."""

import asyncio
import sqlite3
from pathlib import Path

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from models.db import create_engine
from models.sqlite_driver import QUICK, OneTripCursor


class Ticks:
    """Counts the event loop's turns given to another task: whether the loop went on."""

    def __init__(self) -> None:
        self.count = 0

    async def run(self, every_s: float) -> None:
        while True:
            self.count += 1
            await asyncio.sleep(every_s)


async def test_one_trip_per_statement_with_rows_counts_and_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trips: list[str] = []
    real = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: object, *args: object) -> object:
        trips.append(getattr(fn, "__name__", repr(fn)))
        return await real(self, fn, *args)  # type: ignore[no-untyped-call]

    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}")
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)"))
        monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
        async with engine.connect() as connection:
            raw = await connection.get_raw_connection()
            assert isinstance(raw.driver_connection, aiosqlite.Connection)
            trips.clear()
            inserted = await connection.execute(text("INSERT INTO t (v) VALUES ('a')"))
            assert inserted.lastrowid == 1
            # The writer holds the write lock: its statements and commit run on the loop.
            assert trips == []
            await connection.execute(
                text("INSERT INTO t (v) VALUES (:v)"), [{"v": "b"}, {"v": "c"}, {"v": "d"}]
            )
            changed = await connection.execute(text("UPDATE t SET v = v || '!' WHERE id > 1"))
            assert changed.rowcount == 3
            await connection.commit()
            assert trips == []
            rows = (await connection.execute(text("SELECT id, v FROM t ORDER BY id"))).all()
            assert [tuple(row) for row in rows] == [(1, "a"), (2, "b!"), (3, "c!"), (4, "d!")]
            assert trips == ["_run_waiting"]
            # A read marked quick runs on the loop.
            quick = text("SELECT v FROM t WHERE id = 2").execution_options(**QUICK)
            assert (await connection.execute(quick)).scalar() == "b!"
            assert trips == ["_run_waiting"]
            assert (await connection.execute(text("SELECT v FROM t WHERE id = 9"))).first() is None
            with pytest.raises(IntegrityError):
                await connection.execute(text("INSERT INTO t (v) VALUES ('a')"))
            await connection.rollback()
            with pytest.raises(OperationalError, match="no such table"):
                await connection.execute(text("SELECT * FROM missing"))
            await connection.rollback()
            # Streamed results keep aiosqlite's own server-side cursor.
            streamed = await connection.stream(text("SELECT v FROM t ORDER BY id"))
            assert [row[0] async for row in streamed] == ["a", "b!", "c!", "d!"]
    finally:
        await engine.dispose()


async def test_the_engine_hands_out_one_trip_cursors(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'cursor.db'}")
    try:
        async with engine.connect() as connection:
            raw = await connection.get_raw_connection()
            assert isinstance(raw.dbapi_connection.cursor(), OneTripCursor)  # type: ignore[union-attr]
    finally:
        await engine.dispose()


async def test_a_writer_waits_for_another_process_in_the_thread(tmp_path: Path) -> None:
    """The statement that begins a write transaction, finding SQLite's lock taken by another
    process, waits for it in the thread, with the busy handler: the loop goes on meanwhile."""
    path = tmp_path / "busy.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    other = sqlite3.connect(path)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO t (v) VALUES ('other')")

        async def finish_other() -> None:
            await asyncio.sleep(0.3)
            other.commit()

        ticks = Ticks()
        ticker = asyncio.create_task(ticks.run(0.01))
        finisher = asyncio.create_task(finish_other())
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO t (v) VALUES ('mine')"))
            await connection.execute(text("UPDATE t SET v = v || '!' WHERE v = 'mine'"))
        await finisher
        ticker.cancel()
        assert ticks.count >= 10
        async with engine.connect() as connection:
            rows = (await connection.execute(text("SELECT v FROM t ORDER BY id"))).all()
            # On the loop the connection never waits (its own busy timeout is zero): a quick
            # read is one statement, with no busy timeout set before it and reset after.
            raw = await connection.get_raw_connection()
            database = raw.driver_connection._conn  # type: ignore[union-attr]
            statements: list[str] = []
            database.set_trace_callback(statements.append)
            quick = text("SELECT v FROM t WHERE id = 2").execution_options(**QUICK)
            assert (await connection.execute(quick)).scalar() == "mine!"
            database.set_trace_callback(None)
            assert statements == ["SELECT v FROM t WHERE id = 2"]
        assert [row[0] for row in rows] == ["other", "mine!"]
    finally:
        other.close()
        await engine.dispose()


async def test_a_writers_batches_of_rows_hand_the_loop_back(tmp_path: Path) -> None:
    """A writer's single statements run on the loop; its batches of rows (executemany, as a
    roster import writes) run in the thread, so the loop goes on between them."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'batches.db'}")
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
        ticks = Ticks()
        ticker = asyncio.create_task(ticks.run(0))
        await asyncio.sleep(0)
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO t (v) VALUES ('one')"))
            before = ticks.count
            for batch in range(20):
                rows = [{"v": f"{batch}:{n}"} for n in range(500)]
                await connection.execute(text("INSERT INTO t (v) VALUES (:v)"), rows)
            during = ticks.count - before
        ticker.cancel()
        assert during >= 20, during
        async with engine.connect() as connection:
            count = (await connection.execute(text("SELECT count(*) FROM t"))).scalar()
        assert count == 1 + 20 * 500
    finally:
        await engine.dispose()
