"""Nodes and rounds kept in memory once read: no query the second time, the row as the
database has it, in the session as if read there, and never another database's row."""

from pathlib import Path

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from models.db import create_engine, create_session_factory
from models.fixed_rows import as_read, column_values, fixed_row
from models.migrate import upgrade
from models.org import Member, Node
from models.seed import seed_demo


def count_statements(engine: AsyncEngine) -> list[str]:
    statements: list[str] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def counted(_c: object, _cur: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    return statements


async def a_unit(session: AsyncSession) -> Node:
    unit = await session.scalar(select(Node).where(Node.level == "unit").order_by(Node.id))
    assert unit is not None
    return unit


async def test_a_node_is_read_once_then_served_from_memory(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    async with session_factory() as session:
        await seed_demo(session, scale=1)
        unit_id, path = (await a_unit(session)).id, (await a_unit(session)).path
    statements = count_statements(engine)
    async with session_factory() as session:
        first = await fixed_row(session, Node, unit_id)
        assert first is not None and first.path == path
    read = len(statements)
    assert read >= 1
    async with session_factory() as session:
        again = await fixed_row(session, Node, unit_id)
        assert again is not None and (again.id, again.path) == (unit_id, path)
        # In the session as if read there: the same object for the same id, and a query
        # of the session that meets the row gives that object back.
        assert await fixed_row(session, Node, unit_id) is again
        assert await session.get(Node, unit_id) is again
    assert len(statements) == read


async def test_a_remembered_row_is_as_if_read_unchanged_until_changed(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """A row put in a session from memory carries no change: its session writes nothing at
    commit; a value then changed on it is written, and only that value."""
    async with session_factory() as session:
        member = Member(telegram_id=4242, name="王芳", locale="zh")
        session.add(member)
        await session.commit()
        values = column_values(member)
    statements = count_statements(engine)
    async with session_factory() as session:
        again = as_read(session, Member, values)
        assert (again.telegram_id, again.name, again.locale) == (4242, "王芳", "zh")
        assert not session.dirty and not session.new
        await session.commit()
        assert statements == []
        again.locale = "en"
        await session.commit()
    assert len(statements) == 1 and statements[0].startswith("UPDATE members SET locale=")
    async with session_factory() as session:
        read = await session.get(Member, values["id"])
        assert read is not None and (read.locale, read.name) == ("en", "王芳")


async def test_a_row_not_found_is_asked_for_again(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    statements = count_statements(engine)
    async with session_factory() as session:
        assert await fixed_row(session, Node, 999_999) is None
        assert await fixed_row(session, Node, 999_998) is None
    assert len(statements) == 2


async def test_two_databases_never_share_rows(
    tmp_path: Path, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    async with session_factory() as session:
        await seed_demo(session, scale=1)
        unit = await a_unit(session)
        unit_id, path = unit.id, unit.path
        assert await fixed_row(session, Node, unit_id) is unit
    other = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'other.db'}")
    try:
        await upgrade(other)
        async with create_session_factory(other)() as session:
            # The same id in an empty database: nothing, not the first database's unit.
            assert await fixed_row(session, Node, unit_id) is None
    finally:
        await other.dispose()
    async with session_factory() as session:
        found = await fixed_row(session, Node, unit_id)
        assert found is not None and found.path == path
