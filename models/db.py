"""Engine and session factory for SQLite (aiosqlite) and PostgreSQL (asyncpg).

SQLite has a single writer. With many updates in flight, writers that find it taken wait in
SQLite's busy handler, which sleeps 1–100 ms at a time whether or not the writer ahead has
finished. The SQLite engine therefore queues its writers in process instead
(``SqliteWriteLock``): a connection takes an ``asyncio.Lock`` before the statement that
starts its write transaction and gives it back once that transaction is committed or rolled
back, so the next writer starts the moment the last one ends. Reads take no lock (WAL lets
them run beside the writer). Another process writing the same file still meets the busy
handler, as before. PostgreSQL needs none of this.
"""

import asyncio
import sqlite3
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, ExceptionContext, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import await_

from models.sqlite_driver import QUICK_OPTION, OneTripConnection, one_trip_dbapi

# The databases Wuji runs on, by SQLAlchemy's dialect name.
DIALECTS = ("sqlite", "postgresql")

Built = TypeVar("Built")


def dialect_insert(dialect: str) -> Callable[..., Any]:
    """The dialect's own INSERT: it has ``ON CONFLICT`` (upserts), which the generic one lacks."""
    return postgresql_insert if dialect == "postgresql" else sqlite_insert


def per_dialect(build: Callable[[Callable[..., Any]], Built]) -> dict[str, Built]:
    """A statement written on nearly every update, built once for each dialect from its own
    INSERT (values bound at each execution); look it up by ``dialect.name``."""
    return {name: build(dialect_insert(name)) for name in DIALECTS}


SQLITE_BUSY_TIMEOUT_MS = 10_000
HIDDEN_DETAIL = "[row values hidden]"
# The databases Wuji runs on, each with the asyncio driver it installs.
DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
URL_EXAMPLES = "sqlite+aiosqlite:///wuji.db or postgresql+asyncpg://user:password@host/wuji"


def database_url_problem(url: str) -> str | None:
    """What is wrong with ``url`` and how to write it instead, never echoing a password;
    None when Wuji can use it."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return f"not a database URL: use e.g. {URL_EXAMPLES}"
    backend = parsed.get_backend_name()
    backend = "postgresql" if backend == "postgres" else backend
    driver = DRIVERS.get(backend)
    if driver is None:
        return f"{backend} is not supported: use SQLite or PostgreSQL, e.g. {URL_EXAMPLES}"
    if backend == "sqlite" and (
        parsed.database in (None, "", ":memory:") or parsed.query.get("mode") == "memory"
    ):
        # Each connection would get an empty database of its own, gone when it closes:
        # an import would report success and keep nothing.
        return f"an in-memory SQLite database keeps nothing: name a file, e.g. {driver}:///wuji.db"
    if parsed.drivername != driver:
        hint = parsed.set(drivername=driver).render_as_string(hide_password=True)
        return f"{parsed.drivername}:// is not an asyncio driver: write {hint}"
    return None


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(
    url: str, *, echo: bool = False, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS
) -> AsyncEngine:
    """The engine for ``url``; on SQLite a writer waits at most ``busy_timeout_ms`` for the
    writer ahead of it, then fails with "database is locked"."""
    # Statement parameters hold phones and names: a failing statement's exception text and
    # the engine's log show "[SQL parameters hidden]" instead of them.
    if not is_sqlite(url):
        engine = create_async_engine(url, echo=echo, pool_pre_ping=True, hide_parameters=True)
        event.listen(engine.sync_engine, "handle_error", _hide_row_values)
        return engine
    engine = create_async_engine(
        url,
        echo=echo,
        hide_parameters=True,
        connect_args={"timeout": busy_timeout_ms / 1000},
        module=one_trip_dbapi(),
    )
    event.listen(engine.sync_engine, "connect", _configure_sqlite_connection)
    event.listen(engine.sync_engine, "before_cursor_execute", _mark_quick)
    SqliteWriteLock(busy_timeout_ms / 1000).install(engine)
    return engine


_WRITE_LOCKS: "weakref.WeakKeyDictionary[Any, SqliteWriteLock]" = weakref.WeakKeyDictionary()


def write_lock_of(engine: AsyncEngine) -> "SqliteWriteLock | None":
    """The SQLite engine's write lock (with its counters); None for PostgreSQL."""
    return _WRITE_LOCKS.get(engine.sync_engine)


def _hide_row_values(context: ExceptionContext) -> None:
    """PostgreSQL explains a constraint violation with the row's values ("Failing row
    contains (…, +8613800138000)", "Key (phone)=(…) already exists"), and asyncpg prints
    that DETAIL in the exception's text, so a logged traceback would show them."""
    seen: set[int] = set()
    error: BaseException | None = context.original_exception
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(getattr(error, "detail", None), str):
            error.detail = HIDDEN_DETAIL  # type: ignore[attr-defined]
        error = error.__cause__ or error.__context__


def _mark_quick(
    connection: Connection,
    _cursor: Any,
    _statement: str,
    _parameters: Any,
    context: Any,
    _executemany: bool,
) -> None:
    """Tells the driver whether the statement about to run is marked ``QUICK``."""
    dbapi_connection = connection.connection.dbapi_connection
    if isinstance(dbapi_connection, OneTripConnection):
        options = context.execution_options if context is not None else {}
        dbapi_connection.quick = bool(options.get(QUICK_OPTION))


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers go on while the single writer commits; foreign keys are off by
    # default in SQLite and must be switched on for every connection.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


# Statements that read only. Python's sqlite3 opens a transaction (BEGIN) before the first
# INSERT, UPDATE, DELETE or REPLACE and runs reads before it outside any transaction, so the
# first statement that is not one of these starts the write.
_READS = ("SELECT", "PRAGMA", "EXPLAIN")


class SqliteWriteLock:
    """One writer at a time among this engine's connections, queued in process.

    Taken in ``before_cursor_execute`` before a connection's first writing statement (inside
    SQLAlchemy's greenlet, so it can wait on the event loop), held by that connection until
    the dialect has committed, rolled back or closed it. Waiting longer than the busy timeout
    fails as SQLite would ("database is locked"), so a writer that keeps its transaction
    open is reported rather than waited for forever.
    """

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        # asyncio locks belong to one event loop; tests run several loops one after another.
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._holder: DBAPIConnection | None = None
        self._held: asyncio.Lock | None = None
        self._taken_at = 0.0
        # Write transactions so far, and the seconds the lock was held in all.
        self.transactions = 0
        self.held_s = 0.0

    def install(self, engine: AsyncEngine) -> None:
        _WRITE_LOCKS[engine.sync_engine] = self
        event.listen(engine.sync_engine, "before_cursor_execute", self._before_execute)
        dialect = engine.sync_engine.dialect
        for name in ("do_commit", "do_rollback", "do_close", "do_terminate"):
            setattr(dialect, name, self._releasing(getattr(dialect, name)))

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    def _before_execute(
        self,
        connection: Connection,
        _cursor: Any,
        statement: str,
        _parameters: Any,
        _context: Any,
        _executemany: bool,
    ) -> None:
        dbapi_connection = connection.connection.dbapi_connection
        if self._holder is dbapi_connection or dbapi_connection is None:
            return
        if statement.lstrip()[:7].upper().startswith(_READS):
            return
        lock = self._lock()
        try:
            await_(_acquire(lock, self.timeout_s))
        except TimeoutError:
            # Wrapped by SQLAlchemy like the busy handler's own error.
            raise sqlite3.OperationalError("database is locked") from None
        self._holder, self._held = dbapi_connection, lock
        self._taken_at = time.perf_counter()
        if isinstance(dbapi_connection, OneTripConnection):
            # Its write transaction runs on the event loop (see models.sqlite_driver).
            dbapi_connection.in_write = True

    def _releasing(self, method: Any) -> Any:
        def release_after(connection: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(connection, *args, **kwargs)
            finally:
                # SQLAlchemy passes the pool's proxy of the DBAPI connection, or the DBAPI
                # connection itself.
                dbapi_connection = getattr(connection, "dbapi_connection", connection)
                if self._holder is dbapi_connection and self._held is not None:
                    if isinstance(dbapi_connection, OneTripConnection):
                        dbapi_connection.in_write = False
                    held, self._holder, self._held = self._held, None, None
                    self.transactions += 1
                    self.held_s += time.perf_counter() - self._taken_at
                    held.release()

        return release_after


async def _acquire(lock: asyncio.Lock, timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        await lock.acquire()
