"""Conversation (FSM) state in the database, so a conversation survives a restart.

aiogram ships memory, Redis and Mongo storages only; this one keeps a row per key.

Inside an update the storage works through the update's own session (``update_session``,
set by ``DbSessionMiddleware``): the state is read once per update, and what the handler
changes is committed at once, through that session, before the handler replies: a user
may answer a reply before the update that sent it has ended (a reply held by a flood wait),
and the answer must find the new state. Outside an update (tests,
tools) each call opens a session of its own and commits at once.
"""

import json
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import (
    BaseStorage,
    DefaultKeyBuilder,
    KeyBuilder,
    StateType,
    StorageKey,
)
from sqlalchemy import Executable, bindparam, delete, event, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from models.base import utcnow
from models.db import dialect_insert, per_dialect
from models.sqlite_driver import QUICK
from models.system import FsmRecord
from models.updates import FOUND_HANDLED, HANDLED, SERVES

update_session: ContextVar[AsyncSession | None] = ContextVar("update_session", default=None)

# In the update session's ``info``: each key's (state, data as JSON) as read or written in
# this update, and the keys written and not yet committed.
RECORDS = "fsm_records"
PENDING = "fsm_pending"
EMPTY = "{}"
# Read on nearly every update: built once.
_RECORD = (
    select(FsmRecord.state, FsmRecord.data)
    .where(FsmRecord.key == bindparam("key"))
    .execution_options(**QUICK)
)
# The update's first read: the state, and whether the update was handled before
# (``models.updates.was_handled``), in one query.
_RECORD_AND_HANDLED = select(
    HANDLED.label("handled"),
    select(FsmRecord.state).where(FsmRecord.key == bindparam("key")).scalar_subquery(),
    select(FsmRecord.data).where(FsmRecord.key == bindparam("key")).scalar_subquery(),
).execution_options(**QUICK)


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
        session = update_session.get()
        if session is None:
            await self._upsert(self.key_builder.build(key), state=value)
            return
        built = self.key_builder.build(key)
        state, data = await _record(session, built)
        if state == value and not _uncommitted(session, built):
            return  # as it stands in the database: nothing to write
        _write(session, built, value, data)
        # Committed at once: the reply that follows may be answered before this update ends
        # (a flood wait, say), and the answer must find the new state.
        await session.commit()

    async def get_state(self, key: StorageKey) -> str | None:
        session = update_session.get()
        if session is not None:
            return (await _record(session, self.key_builder.build(key)))[0]
        record = await self._get(self.key_builder.build(key))
        return record.state if record else None

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        encoded = json.dumps(dict(data))
        session = update_session.get()
        if session is None:
            await self._upsert(self.key_builder.build(key), data=encoded)
            return
        built = self.key_builder.build(key)
        state, stored = await _record(session, built)
        if stored == encoded and not _uncommitted(session, built):
            return
        _write(session, built, state, encoded)
        await session.commit()

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        session = update_session.get()
        if session is not None:
            return dict(json.loads((await _record(session, self.key_builder.build(key)))[1]))
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
            insert = dialect_insert(dialect)
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


async def _record(session: AsyncSession, key: str) -> tuple[str | None, str]:
    """The key's state and data in this update: read from the database once."""
    records: dict[str, tuple[str | None, str]] = session.info.setdefault(RECORDS, {})
    record = records.get(key)
    if record is not None:
        return record
    serves = session.info.get(SERVES)
    if serves is not None and FOUND_HANDLED not in session.info:
        bot_id, update_id = serves
        values = {"key": key, "bot_id": bot_id, "update_id": update_id}
        handled, state, data = (await session.execute(_RECORD_AND_HANDLED, values)).one()
        session.info[FOUND_HANDLED] = bool(handled)
        record = (state, data) if data is not None else (None, EMPTY)
    else:
        row = (await session.execute(_RECORD, {"key": key})).first()
        record = (row[0], row[1]) if row is not None else (None, EMPTY)
    records[key] = record
    return record


def _uncommitted(session: AsyncSession, key: str) -> bool:
    return key in session.info.get(PENDING, ())


def _write(session: AsyncSession, key: str, state: str | None, data: str) -> None:
    session.info[RECORDS][key] = (state, data)
    session.info.setdefault(PENDING, set()).add(key)


async def commit_fsm_writes(session: AsyncSession) -> None:
    """Commit what the update changed in conversations and nothing committed yet (the
    writes themselves happen in ``_write_pending``, as the session commits)."""
    if session.info.get(PENDING):
        await session.commit()


def _upsert_statement(insert: Callable[..., Any]) -> Executable:
    statement = insert(FsmRecord.__table__).values(
        key=bindparam("key", type_=FsmRecord.key.type),
        state=bindparam("state", type_=FsmRecord.state.type),
        data=bindparam("data", type_=FsmRecord.data.type),
        updated_at=bindparam("updated_at", type_=FsmRecord.updated_at.type),
    )
    excluded = statement.excluded
    upsert: Executable = statement.on_conflict_do_update(
        index_elements=[FsmRecord.key],
        set_={"state": excluded.state, "data": excluded.data, "updated_at": excluded.updated_at},
    )
    return upsert


# Written by most report taps: built once (per dialect), values bound at each execution.
_UPSERTS = per_dialect(_upsert_statement)
_DELETE = delete(FsmRecord).where(FsmRecord.key == bindparam("key"))


def _statement(
    dialect: str, key: str, state: str | None, data: str
) -> tuple[Executable, dict[str, Any]]:
    if state is None and data == EMPTY:
        # A finished conversation leaves no row behind.
        return _DELETE, {"key": key}
    values = {"key": key, "state": state, "data": data, "updated_at": utcnow()}
    return _UPSERTS[dialect], values


@event.listens_for(Session, "before_commit")
def _write_pending(session: Session) -> None:
    """Conversation state written in the transaction that commits the handler's work."""
    pending: set[str] | None = session.info.get(PENDING)
    if not pending:
        return
    records = session.info[RECORDS]
    dialect = session.get_bind().dialect.name
    for key in sorted(pending):
        session.execute(*_statement(dialect, key, *records[key]))


@event.listens_for(Session, "after_commit")
def _written(session: Session) -> None:
    # Only once committed: a transaction that fails leaves them to be written again.
    session.info.pop(PENDING, None)
