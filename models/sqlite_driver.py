"""SQLite through aiosqlite with one trip to its thread per statement.

SQLAlchemy's aiosqlite adapter makes four trips to the connection's thread for every read
(open a cursor, execute, fetch the rows, close the cursor) and three for every write; each
trip is a hand-over to the thread and a wake-up of the event loop, which on a busy loop
costs more than SQLite's own work for a point query. Here one function run in the thread
opens a cursor, executes, fetches and closes, and hands back the description, row count,
last row id and rows together. Everything else (transactions, server-side cursors for
streamed results, errors and their wrapping) is the adapter's own.

A connection that holds the engine's in-process write lock (``models.db.SqliteWriteLock``
sets ``in_write``) runs its statements, its commit and its rollback on the event loop itself,
not in the thread: every other writer waits for this one, and a trip to the thread and back
costs the writer a turn of the whole busy loop per statement, several milliseconds with many
updates in flight, during which nobody else can write. Such a statement costs SQLite's own
work, tens of microseconds: in WAL mode neither a write inside the transaction nor its commit
waits for a reader. Only the statement that begins the transaction may wait, for a writer of
another process: the connection's own busy timeout is zero, so on the loop a statement is
tried at once, and when the database is locked it is handed to the thread, which waits there
with the engine's busy timeout (``_run_waiting``), so that the loop never stops to wait.
Every statement sent to the thread waits that way.

A statement marked ``QUICK`` (an execution option: a read of a few rows by key, made on nearly
every update) runs on the loop the same way: the trip would cost more than the read.
"""

import collections
import sqlite3
from collections.abc import Sequence
from typing import Any, cast

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT, await_

Outcome = tuple[Any, int, int | None, list[Any] | None]

# Rows of one executemany above which even the writer's batch runs in the thread.
LARGE_BATCH = 200

# ``statement.execution_options(**QUICK)``: the statement runs on the event loop (see above).
QUICK_OPTION = "wuji_quick"
QUICK = {QUICK_OPTION: True}


def _run_waiting(
    connection: sqlite3.Connection,
    busy_timeout_ms: int,
    operation: str,
    parameters: Any,
    many: bool,
) -> Outcome:
    """In the connection's thread: ``_run`` with SQLite's busy handler waiting up to
    ``busy_timeout_ms`` for another writer; the connection's timeout is zero again after."""
    connection.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
    try:
        return _run(connection, operation, parameters, many)
    finally:
        connection.execute("PRAGMA busy_timeout = 0")


def _run(connection: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> Outcome:
    """In the connection's thread: the statement, its rows and its cursor's close."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        rows = cursor.fetchall() if cursor.description else None
        return cursor.description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A client-side cursor whose statement, fetch and close are one trip to the thread."""

    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # No aiosqlite cursor is opened: each statement opens and closes its own.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._arraysize = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    async def _async_soft_close(self) -> None:
        return None  # nothing stays open between trips

    def close(self) -> None:
        self._rows.clear()

    @property
    def _owner(self) -> "OneTripConnection":
        return cast(OneTripConnection, self._adapt_connection)

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        try:
            trip = self._here if self._owner.in_write or self._owner.quick else self._trip
            return await_(trip(operation, parameters, many=False))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        # The writer's few rows (a unit's households) run on the loop; a large batch (a
        # roster import's chunks) goes to the thread, so that a long import hands the loop
        # back between its batches instead of holding it for the whole import.
        try:
            here = self._owner.in_write and len(seq_of_parameters) <= LARGE_BATCH
            trip = self._here if here else self._trip
            return await_(trip(operation, seq_of_parameters, many=True))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    async def _here(self, operation: str, parameters: Any, many: bool) -> "OneTripCursor":
        """The statement run on the event loop (by the connection holding the write lock, or
        a quick read): a coroutine that suspends only to hand a statement that must wait to
        the thread."""
        connection = cast(aiosqlite.Connection, self._connection)
        database = connection._conn
        began = not database.in_transaction
        try:
            self._keep(_run(database, operation, parameters, many))
            return self
        except sqlite3.OperationalError as error:
            # Only a statement beginning a transaction, or a read outside one, can find the
            # database locked (by another process); the connection does not wait for it.
            if not began or error.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                raise
            # Nothing was written: the transaction just begun ends, and the statement waits
            # in the thread, with the busy handler, as any other.
            if database.in_transaction:
                database.rollback()
        return await self._trip(operation, parameters, many)

    async def _trip(self, operation: str, parameters: Any, many: bool) -> "OneTripCursor":
        connection = cast(aiosqlite.Connection, self._connection)
        async with self._adapt_connection._execute_mutex:
            # aiosqlite's own way of running a function in the connection's thread.
            outcome: Outcome = await connection._execute(  # type: ignore[no-untyped-call]
                _run_waiting,
                connection._conn,
                self._owner.busy_timeout_ms,
                operation,
                parameters,
                many,
            )
        self._keep(outcome)
        return self

    def _keep(self, outcome: Outcome) -> None:
        self._description, self._rowcount, self._lastrowid, rows = outcome
        self._rows = collections.deque(rows or ())

    def nextset(self) -> None:
        self._rows.clear()  # SQLite returns one result set per statement

    def setinputsizes(self, *inputsizes: Any) -> None:
        return None


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ("busy_timeout_ms", "in_write", "quick")
    _cursor_cls = OneTripCursor  # type: ignore[assignment] # a subclass of the declared one

    def __init__(self, dbapi: Any, connection: Any, busy_timeout_ms: int) -> None:
        super().__init__(dbapi, connection)
        self.busy_timeout_ms = busy_timeout_ms
        # Set while this connection holds the engine's write lock (see the module's docstring).
        self.in_write = False
        # Set for the statement about to run when it is marked QUICK.
        self.quick = False

    def commit(self) -> None:
        if not self._ended_on_loop("commit"):
            super().commit()

    def rollback(self) -> None:
        if not self._ended_on_loop("rollback"):
            super().rollback()

    def _ended_on_loop(self, how: str) -> bool:
        """The writer's own commit or rollback, or one with nothing to end (a session that
        only read), runs on the loop without a trip to the thread; False otherwise."""
        database = self._connection._connection
        if database is None or not (self.in_write or not database.in_transaction):
            return False
        try:
            getattr(database, how)()
        except Exception as error:
            self._handle_exception(error)
        return True


class OneTripDbapi(AsyncAdapt_aiosqlite_dbapi):
    """The aiosqlite DBAPI shim, handing out connections with one-trip cursors."""

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        # sqlite3's own default busy timeout is 5 seconds. The connection itself never waits:
        # only a statement sent to the thread does (see above).
        busy_timeout_ms = int(float(kw.pop("timeout", 5.0)) * 1000)
        # Statements of a write transaction run on the event loop's thread (see above).
        connection = self.aiosqlite.connect(
            *arg, **{**kw, "timeout": 0, "check_same_thread": False}
        )
        # As the adapter does: the thread must not keep the process alive at exit.
        connection._thread.daemon = True
        return OneTripConnection(self, await_(connection), busy_timeout_ms)


def one_trip_dbapi() -> OneTripDbapi:
    """For ``create_async_engine(..., module=one_trip_dbapi())`` on a ``sqlite+aiosqlite`` URL."""
    return OneTripDbapi(aiosqlite, sqlite3)
