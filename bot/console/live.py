"""One look at the database per process every few seconds, however many pages are open:
a cheap fingerprint (``models.console.data_version``) is read, and every open stream is
woken when it changed."""

import asyncio
import logging
from contextlib import suppress

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.console import data_version

logger = logging.getLogger(__name__)


class VersionWatcher:
    def __init__(self, session_factory: async_sessionmaker[AsyncSession], every_s: float) -> None:
        self.session_factory = session_factory
        self.every_s = every_s
        self.version: tuple[object, ...] = ()
        # A counter streams compare with the one they last pushed.
        self.generation = 0
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self.viewers = 0

    async def start(self) -> None:
        if self._task is None:
            await self.look()
            self._task = asyncio.create_task(self._run(), name="console-watcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def look(self) -> None:
        async with self.session_factory() as session:
            version = await data_version(session)
        if version != self.version:
            self.version = version
            self.generation += 1
            async with self._changed:
                self._changed.notify_all()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            if not self.viewers:
                continue
            try:
                await self.look()
            except Exception:
                logger.exception("console: could not read the data version")

    async def wait_past(self, generation: int, within_s: float) -> int:
        """The generation once past ``generation``, or as it stands after ``within_s`` seconds."""
        if self.generation > generation:
            return self.generation
        async with self._changed:
            with suppress(TimeoutError):
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self.generation > generation), within_s
                )
        return self.generation
