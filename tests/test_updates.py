"""Update ids already handled: claimed once (with the update's first commit), given back
on failure, purged after a day."""

import asyncio
from datetime import timedelta

import pytest
from aiogram import Bot, Dispatcher
from aiogram.types import Message, Update
from sqlalchemy import event, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.fsm_storage import SqlStorage
from bot.middlewares import DbSessionMiddleware, OnceMiddleware
from models.audit import record
from models.base import utcnow
from models.system import AuditEntry, HandledUpdate
from models.updates import (
    AlreadyHandled,
    claim_update,
    claim_with_first_commit,
    purge_handled_updates,
    release_update,
    was_handled,
)

BOT, OTHER_BOT = 123456, 654321
# Telegram's update ids are positive 32-bit numbers; bot ids already pass 2**32.
UPDATE = 2**31 - 5


async def test_an_update_is_claimed_once_per_bot(session: AsyncSession) -> None:
    assert await claim_update(session, BOT, UPDATE)
    assert not await claim_update(session, BOT, UPDATE)
    assert await claim_update(session, OTHER_BOT, UPDATE)
    assert await claim_update(session, 8_000_000_000, UPDATE)
    await release_update(session, BOT, UPDATE)
    assert await claim_update(session, BOT, UPDATE)


async def test_claims_older_than_a_day_are_purged(session: AsyncSession) -> None:
    for update_id in (1, 2, 3):
        assert await claim_update(session, BOT, update_id)
    await session.execute(
        update(HandledUpdate)
        .where(HandledUpdate.update_id.in_([1, 2]))
        .values(handled_at=utcnow() - timedelta(days=1, minutes=1))
    )
    await session.commit()

    assert await purge_handled_updates(session, timedelta(days=1)) == 2
    assert await session.scalar(select(func.count()).select_from(HandledUpdate)) == 1
    assert await claim_update(session, BOT, 1)  # forgotten, so a new delivery would count
    assert not await claim_update(session, BOT, 3)
    assert await purge_handled_updates(session, timedelta(days=1)) == 0


# --- the claim in the update's own first commit (OnceMiddleware) --------------------------


class Boom(Exception):
    pass


def dispatcher_with_once(
    session_factory: async_sessionmaker[AsyncSession], seen: list[str]
) -> Dispatcher:
    """A dispatcher with the bot's session and once middlewares and one handler: "write"
        records an audit row and commits, "raced" too once another process claimed the update,
    "read" writes nothing, "fail early" raises before any
        commit, "fail late" after its commit."""
    dispatcher = Dispatcher()
    dispatcher.update.outer_middleware(DbSessionMiddleware(session_factory))
    dispatcher.update.outer_middleware(OnceMiddleware(session_factory))

    async def handle(message: Message, session: AsyncSession) -> None:
        text = message.text or ""
        seen.append(text)
        if text == "fail early":
            raise Boom
        if text == "raced":  # another process claims the update meanwhile
            async with session_factory() as other:
                assert await claim_update(other, BOT_ID, message.message_id)
        if text != "read":
            record(session, "test.handled", message.from_user.id if message.from_user else 0)
            await session.commit()
        if text == "fail late":
            raise Boom
        if text == "slow":
            await asyncio.sleep(0.2)

    dispatcher.message.register(handle)
    return dispatcher


def message_update(update_id: int, text: str) -> Update:
    return Update.model_validate(
        {
            "update_id": update_id,
            "message": {
                "message_id": update_id,
                "date": utcnow(),
                "chat": {"id": 77, "type": "private"},
                "from": {"id": 77, "is_bot": False, "first_name": "L"},
                "text": text,
            },
        }
    )


async def audited(session_factory: async_sessionmaker[AsyncSession]) -> int:
    async with session_factory() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action == "test.handled")
            )
            or 0
        )


async def claimed(session_factory: async_sessionmaker[AsyncSession], update_id: int) -> bool:
    async with session_factory() as session:
        return await was_handled(session, BOT_ID, update_id)


BOT_ID = 42


@pytest.fixture
def bot() -> Bot:
    return Bot(f"{BOT_ID}:TEST-wuji-once")


async def test_an_update_delivered_twice_is_handled_once(
    session_factory: async_sessionmaker[AsyncSession], bot: Bot
) -> None:
    seen: list[str] = []
    dispatcher = dispatcher_with_once(session_factory, seen)
    await dispatcher.feed_update(bot, message_update(1, "write"))
    await dispatcher.feed_update(bot, message_update(1, "write"))  # later
    await asyncio.gather(  # both at once in one process
        dispatcher.feed_update(bot, message_update(2, "slow")),
        dispatcher.feed_update(bot, message_update(2, "slow")),
    )
    await dispatcher.feed_update(bot, message_update(3, "read"))  # the claim alone
    await dispatcher.feed_update(bot, message_update(3, "read"))
    assert seen == ["write", "slow", "read"]
    assert await audited(session_factory) == 2
    assert all([await claimed(session_factory, update_id) for update_id in (1, 2, 3)])


async def test_two_processes_handling_one_update_commit_it_once(
    session_factory: async_sessionmaker[AsyncSession], bot: Bot
) -> None:
    """Another process takes the same update at the same moment: this one passed the read,
    and its commit finds the other's claim and writes nothing; nothing is sent either."""
    seen: list[str] = []
    dispatcher = dispatcher_with_once(session_factory, seen)
    assert await dispatcher.feed_update(bot, message_update(5, "raced")) is None
    assert seen == ["raced"]
    assert await audited(session_factory) == 0  # the other process's claim, and no row
    assert await claimed(session_factory, 5)


async def test_a_commit_carrying_a_claim_taken_writes_nothing(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with session_factory() as session:
        assert await claim_update(session, BOT_ID, 9)
    async with session_factory() as session:
        claim_with_first_commit(session, BOT_ID, 9)
        record(session, "test.handled", 77)
        with pytest.raises(AlreadyHandled):
            await session.commit()
        await session.rollback()
    assert await audited(session_factory) == 0


async def test_a_failed_update_is_handled_again_on_redelivery(
    session_factory: async_sessionmaker[AsyncSession], bot: Bot
) -> None:
    seen: list[str] = []
    dispatcher = dispatcher_with_once(session_factory, seen)
    for text in ("fail early", "fail late"):
        update_id = 10 + len(seen)
        with pytest.raises(Boom):
            await dispatcher.feed_update(bot, message_update(update_id, text))
        assert not await claimed(session_factory, update_id)
        with pytest.raises(Boom):
            await dispatcher.feed_update(bot, message_update(update_id, text))
    assert seen == ["fail early", "fail early", "fail late", "fail late"]


async def test_with_the_database_state_the_question_rides_on_the_states_read(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession], bot: Bot
) -> None:
    """In the bot's own order (session, state inside the user's lock, once), "handled
    before?" is asked by the state's read: one read per update, and a second delivery, later
    or at the same moment, is still skipped."""
    seen: list[str] = []
    dispatcher = Dispatcher(storage=SqlStorage(session_factory))
    dispatcher.update.outer_middleware.unregister(dispatcher.fsm)
    dispatcher.update.outer_middleware(DbSessionMiddleware(session_factory))
    dispatcher.update.outer_middleware(dispatcher.fsm)
    dispatcher.update.outer_middleware(OnceMiddleware(session_factory))

    async def handle(message: Message, session: AsyncSession) -> None:
        seen.append(message.text or "")
        record(session, "test.handled", 77)
        await session.commit()
        await asyncio.sleep(0.05)

    dispatcher.message.register(handle)
    reads: list[str] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def count(_c: object, _cur: object, statement: str, *_args: object) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            reads.append(statement)

    await dispatcher.feed_update(bot, message_update(1, "first"))
    assert len(reads) == 1 and "handled_updates" in reads[0] and "fsm_records" in reads[0]
    await dispatcher.feed_update(bot, message_update(1, "first"))
    await asyncio.gather(
        dispatcher.feed_update(bot, message_update(2, "second")),
        dispatcher.feed_update(bot, message_update(2, "second")),
    )
    assert seen == ["first", "second"]
    assert await audited(session_factory) == 2
