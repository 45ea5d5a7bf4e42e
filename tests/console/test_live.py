"""The live watcher: a stream cancelled while it waits ends cleanly, a change wakes every
stream waiting, and the looks are spaced to keep panel building to a tenth of the time."""

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.console.live import BUILD_SHARE, VersionWatcher
from models.messages import Text
from models.outbox.table import OutgoingMessage, enqueue


async def test_a_change_wakes_the_streams_and_a_cancelled_one_ends_cleanly(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    watcher = VersionWatcher(session_factory, every_s=2)
    await watcher.look()
    seen = watcher.generation
    waiting = [asyncio.create_task(watcher.wait_past(seen, 30)) for _ in range(3)]
    leaving = asyncio.create_task(watcher.wait_past(seen, 30))
    await asyncio.sleep(0.05)
    leaving.cancel()  # the viewer closed the page
    with pytest.raises(asyncio.CancelledError):
        await leaving
    async with session_factory() as session:
        await enqueue(session, [OutgoingMessage(chat_id=5, content=Text("help.text"))])
        await session.commit()
    await watcher.look()
    assert await asyncio.gather(*waiting) == [seen + 1] * 3
    # Nothing new: a wait runs out and says so.
    assert await watcher.wait_past(seen + 1, 0.05) == seen + 1


async def test_looks_are_spaced_by_what_the_panels_cost(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    watcher = VersionWatcher(session_factory, every_s=2)
    assert watcher.pause_s() == 2
    watcher.built(0.1)
    assert watcher.pause_s() == 2
    watcher.built(0.4)
    assert watcher.pause_s() == pytest.approx(0.5 / BUILD_SHARE)
    async with session_factory() as session:
        await enqueue(session, [OutgoingMessage(chat_id=5, content=Text("help.text"))])
        await session.commit()
    await watcher.look()  # a new generation: its panels are yet to be built
    assert watcher.pause_s() == 2
