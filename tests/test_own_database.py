"""Two test runs against one PostgreSQL server keep out of each other's way: each run
creates a database of its own, wipes only that one, and drops it at the end."""

import asyncio
import os
import sys
from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from models.db import create_engine, is_sqlite

ROOT = Path(__file__).resolve().parent.parent


async def test_a_second_run_at_the_same_time_leaves_this_runs_tables_alone(
    db_url: str, engine: AsyncEngine
) -> None:
    server_url = os.environ.get("TEST_DATABASE_URL")
    if not server_url or is_sqlite(server_url):
        # Without PostgreSQL every test has a SQLite file in its own tmp dir.
        assert is_sqlite(db_url) and "pytest" in db_url
        return
    own = make_url(db_url).database or ""
    assert own.startswith(f"wuji_test_{os.getpid()}_")
    assert own != make_url(server_url).database

    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE still_here (id INTEGER PRIMARY KEY)"))
    # Another run, as another developer or CI would start it against the same server; its
    # fixtures wipe their database before each test.
    other = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"),
        "tests/test_migrations.py",
        cwd=ROOT,
        env={**os.environ, "TEST_DATABASE_URL": server_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(other.communicate(), timeout=300)
    assert other.returncode == 0, output.decode()

    async with engine.connect() as connection:
        tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    assert {"still_here", "nodes"} <= tables
    # The other run dropped its own database when it ended.
    server = create_engine(server_url)
    try:
        async with server.connect() as connection:
            left = await connection.scalar(
                text("SELECT count(*) FROM pg_database WHERE datname LIKE :name"),
                {"name": f"wuji_test_{other.pid}_%"},
            )
    finally:
        await server.dispose()
    assert left == 0
