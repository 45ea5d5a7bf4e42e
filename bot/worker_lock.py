"""Exactly one worker: the process that runs the clock and the outbox sender holds a lock.
A second worker waits; when the first dies its lock is free, and the second takes over.

On PostgreSQL the lock is an advisory lock on a connection of its own, lost if that
connection is (https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS).
On SQLite every process is on the one machine that holds the database file: the lock is an
exclusive ``flock`` on a file beside it (``wuji.db-worker.lock``), which the system frees
when the process ends, however it ends; so web replicas and a worker can share one file.
"""

import asyncio
import fcntl
import logging
from collections.abc import Awaitable, Callable
from typing import IO

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

logger = logging.getLogger(__name__)

# The advisory lock's key: any 64-bit number the deployment uses for nothing else.
WORKER_LOCK_KEY = 0x5755_4A49  # "WUJI"


class WorkerLock:
    def __init__(self, engine: AsyncEngine, *, retry_s: float = 5.0, check_s: float = 10.0):
        self.engine = engine
        self.retry_s = retry_s
        self.check_s = check_s
        self._connection: AsyncConnection | None = None
        self._file: IO[bytes] | None = None

    @property
    def can_be_lost(self) -> bool:
        """Whether the lock can be lost while this process lives (with its connection)."""
        return self.engine.dialect.name == "postgresql"

    @property
    def _path(self) -> str | None:
        """SQLite's lock file, beside the database; None for a database in memory."""
        database = self.engine.url.database
        if self.engine.dialect.name != "sqlite" or database in (None, "", ":memory:"):
            return None
        return f"{database}-worker.lock"

    async def acquire(self) -> None:
        """Returns once this process holds the lock."""
        waited = False
        while not await self._try():
            if not waited:
                logger.info("another process is the worker; waiting to take over")
                waited = True
            await asyncio.sleep(self.retry_s)
        logger.info("this process is the worker: it runs the clock and the sender")

    async def _try(self) -> bool:
        if self.can_be_lost:
            return await self._try_advisory()
        path = self._path
        if path is None:
            return True  # a database in memory lives in this process alone
        self._file = _locked(path)
        return self._file is not None

    async def _try_advisory(self) -> bool:
        try:
            connection = await self.engine.connect()
            held = await connection.scalar(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": WORKER_LOCK_KEY}
            )
            if held:
                # The lock lives as long as this connection; it holds no transaction.
                await connection.commit()
                self._connection = connection
                return True
            await connection.close()
        except Exception as error:  # the database away: try again, as a waiting worker
            logger.warning("worker lock: %s; trying again", type(error).__name__)
        return False

    async def watch(self, lost: Callable[[], Awaitable[None]]) -> None:
        """Checks now and then that the lock's connection is alive; if it is not, the lock
        may be someone else's now: ``lost`` stops the work, and this returns."""
        if self._connection is None:
            return
        while True:
            await asyncio.sleep(self.check_s)
            try:
                await self._connection.execute(text("SELECT 1"))
                await self._connection.commit()
            except Exception:
                logger.error("worker lock lost with its database connection; stopping work")
                await self.release()
                await lost()
                return

    async def release(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()  # closing the file frees its lock
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            # The pool would keep the session, and the lock with it, alive: end both.
            await connection.invalidate()
        except Exception as error:  # already gone with the database
            logger.debug("worker lock connection: %s", type(error).__name__)
        finally:
            await connection.close()


def _locked(path: str) -> IO[bytes] | None:
    """The file at ``path``, open and locked by this process; None while another holds it."""
    file = open(path, "ab")  # noqa: SIM115 (kept open as long as the lock is held)
    try:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        file.close()
        return None
    return file
