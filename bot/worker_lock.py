"""Exactly one worker: the process that runs the clock and the outbox sender holds a
PostgreSQL advisory lock on a connection of its own. A second worker waits; when the first
dies its connection closes, the lock is free, and the second takes over. On SQLite the
deployment is one process, and there is nothing to lock.
(https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS)
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable

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

    @property
    def needed(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    async def acquire(self) -> None:
        """Returns once this process holds the lock (at once on SQLite)."""
        if not self.needed:
            return
        waited = False
        while True:
            try:
                connection = await self.engine.connect()
                held = await connection.scalar(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": WORKER_LOCK_KEY}
                )
                if held:
                    # The lock lives as long as this connection; it holds no transaction.
                    await connection.commit()
                    self._connection = connection
                    logger.info("this process is the worker: it runs the clock and the sender")
                    return
                await connection.close()
            except Exception as error:  # the database away: try again, as a waiting worker
                logger.warning("worker lock: %s; trying again", type(error).__name__)
            if not waited:
                logger.info("another process is the worker; waiting to take over")
                waited = True
            await asyncio.sleep(self.retry_s)

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
