from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from models.migrate import pending_revisions


async def test_migrations_create_every_table_and_leave_nothing_pending(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    assert {"nodes", "households", "posts", "members", "fsm_records", "audit_log"} <= tables
    assert await pending_revisions(engine) == []
