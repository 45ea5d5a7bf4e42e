"""One look at the database per process every few seconds, however many pages are open:
a cheap fingerprint (``models.console.data_version``) is read, and every open stream is
woken when it changed.

Every change makes the pages being watched build their panels again (once per node and
language, shared by their viewers). Under a stream of reports that is every look, so the
looks are spaced to keep that work to about a tenth of the process's time: the next look
comes ``every_s`` after the last, or ten times the time the last generation's panels took
to build, whichever is later."""

import asyncio
import logging
from contextlib import suppress

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.console import data_version

logger = logging.getLogger(__name__)

# Panels may take this share of the process's time, at most, however fast data changes.
BUILD_SHARE = 0.1


class VersionWatcher:
    def __init__(self, session_factory: async_sessionmaker[AsyncSession], every_s: float) -> None:
        self.session_factory = session_factory
        self.every_s = every_s
        self.version: tuple[object, ...] = ()
        # A counter streams compare with the one they last pushed.
        self.generation = 0
        # Set when the generation moves, then replaced: a stream waits on the one it saw.
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.viewers = 0
        # Seconds spent building panels since the generation last moved.
        self.built_s = 0.0

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
            self.built_s = 0.0
            changed, self._changed = self._changed, asyncio.Event()
            changed.set()

    def built(self, seconds: float) -> None:
        """A generation's panels took ``seconds`` to build (for one node and language)."""
        self.built_s += seconds

    def pause_s(self) -> float:
        return max(self.every_s, self.built_s / BUILD_SHARE)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.pause_s())
            if not self.viewers:
                continue
            try:
                await self.look()
            except Exception:
                logger.exception("console: could not read the data version")

    async def wait_past(self, generation: int, within_s: float) -> int:
        """The generation once past ``generation``, or as it stands after ``within_s`` seconds."""
        changed = self._changed
        if self.generation > generation:
            return self.generation
        with suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), within_s)
        return self.generation
