"""Fixtures shared by the whole suite.

Every test gets a fresh, migrated database: a SQLite file in its tmp dir, or, when
``TEST_DATABASE_URL`` is set (e.g. ``postgresql+asyncpg://postgres@127.0.0.1:5432/test``),
a PostgreSQL database of this run's own, wiped and migrated again for each test. The run
creates it on that server (``wuji_test_<pid>_<random>``, through a connection to the
database the URL names) and drops it at the end, so two runs against one server do not
touch each other's tables.
"""

import asyncio
import logging
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.logging_setup import DRIVER_LOGGERS, ROUTINE_LOGGERS
from models.db import create_engine, create_session_factory, is_sqlite
from models.migrate import upgrade


@pytest.fixture(scope="session")
def own_test_database() -> Iterator[str | None]:
    """The URL of this run's own PostgreSQL database; None without TEST_DATABASE_URL."""
    server_url = os.environ.get("TEST_DATABASE_URL")
    if not server_url or is_sqlite(server_url):
        yield server_url or None
        return
    name = f"wuji_test_{os.getpid()}_{secrets.token_hex(4)}"
    asyncio.run(_create_or_drop(server_url, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_create_or_drop(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _create_or_drop(server_url: str, statement: str) -> None:
    # CREATE and DROP DATABASE cannot run inside a transaction.
    admin = create_engine(server_url).execution_options(isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await admin.dispose()


@pytest.fixture
def db_url(tmp_path: Path, own_test_database: str | None) -> str:
    return own_test_database or f"sqlite+aiosqlite:///{tmp_path / 'wuji.db'}"


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(db_url)
    if not is_sqlite(db_url):
        async with engine.begin() as connection:
            await connection.execute(text("DROP SCHEMA public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
    await upgrade(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_session_factory(engine)


@pytest.fixture
async def session(
    session_factory: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    async with session_factory() as session:
        yield session


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """``setup_logging`` (and an in-process ``bot.cli.main``) sets the process's logging:
    it is put back after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    names = (*ROUTINE_LOGGERS, *DRIVER_LOGGERS)
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, saved in levels.items():
        logging.getLogger(name).setLevel(saved)
