"""Conversation (FSM) state in the database, so a conversation survives a restart.

aiogram ships memory, Redis and Mongo storages only; this one keeps a row per key.
"""

import json
from collections.abc import Mapping
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import (
    BaseStorage,
    DefaultKeyBuilder,
    KeyBuilder,
    StateType,
    StorageKey,
)
from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.base import utcnow
from models.system import FsmRecord


class SqlStorage(BaseStorage):
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        key_builder: KeyBuilder | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.key_builder = key_builder or DefaultKeyBuilder(with_destiny=True)

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        await self._upsert(self.key_builder.build(key), state=value)

    async def get_state(self, key: StorageKey) -> str | None:
        record = await self._get(self.key_builder.build(key))
        return record.state if record else None

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        await self._upsert(self.key_builder.build(key), data=json.dumps(dict(data)))

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        record = await self._get(self.key_builder.build(key))
        return dict(json.loads(record.data)) if record else {}

    async def close(self) -> None:
        # The engine belongs to the application, which disposes of it.
        return None

    async def _get(self, key: str) -> FsmRecord | None:
        async with self.session_factory() as session:
            return await session.get(FsmRecord, key)

    async def _upsert(self, key: str, **values: Any) -> None:
        async with self.session_factory() as session:
            dialect = session.get_bind().dialect.name
            insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
            values["updated_at"] = utcnow()
            statement = insert(FsmRecord).values(key=key, **{"state": None, "data": "{}", **values})
            await session.execute(
                statement.on_conflict_do_update(index_elements=[FsmRecord.key], set_=values)
            )
            # A finished conversation leaves no row behind.
            await session.execute(
                delete(FsmRecord).where(
                    FsmRecord.key == key, FsmRecord.state.is_(None), FsmRecord.data == "{}"
                )
            )
            await session.commit()
