from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from models.migrate import pending_revisions


async def test_migrations_create_every_table_and_leave_nothing_pending(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    assert {"nodes", "households", "posts", "members", "fsm_records", "audit_log"} <= tables
    assert await pending_revisions(engine) == []


async def test_the_models_and_the_migrations_agree(engine: AsyncEngine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    import models.alerts
    import models.needs
    import models.notices
    import models.outbox
    import models.people
    import models.rounds  # noqa: F401  (registers their tables)
    from models.base import Base

    def differences(sync_connection: Connection) -> list[object]:
        context = MigrationContext.configure(sync_connection)
        return list(compare_metadata(context, Base.metadata))

    async with engine.connect() as connection:
        assert await connection.run_sync(differences) == []
