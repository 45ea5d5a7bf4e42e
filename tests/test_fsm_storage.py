from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import StorageKey
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.fsm_storage import SqlStorage
from models.system import FsmRecord


class Registration(StatesGroup):
    waiting_for_contact = State()


KEY = StorageKey(bot_id=1, chat_id=1001, user_id=1001)


async def test_a_conversation_survives_a_new_storage(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    before_restart = SqlStorage(session_factory)
    await before_restart.set_state(KEY, Registration.waiting_for_contact)
    await before_restart.set_data(KEY, {"post_id": 7, "path": "片区01/幸福小区"})

    after_restart = SqlStorage(session_factory)
    assert await after_restart.get_state(KEY) == "Registration:waiting_for_contact"
    assert await after_restart.get_data(KEY) == {"post_id": 7, "path": "片区01/幸福小区"}
    other = StorageKey(bot_id=1, chat_id=1002, user_id=1002)
    assert await after_restart.get_state(other) is None
    assert await after_restart.get_data(other) == {}


async def test_a_finished_conversation_leaves_no_row(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    storage = SqlStorage(session_factory)
    await storage.set_state(KEY, "Registration:waiting_for_contact")
    await storage.set_data(KEY, {"post_id": 7})
    await storage.update_data(KEY, {"phone": "+8613800138000"})
    assert await storage.get_data(KEY) == {"post_id": 7, "phone": "+8613800138000"}
    await storage.set_state(KEY, None)
    await storage.set_data(KEY, {})
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(FsmRecord)) == 0
