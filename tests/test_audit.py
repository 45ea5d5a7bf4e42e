"""Audit entries land with the transaction they belong to, or not at all."""

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.audit import record
from models.system import AuditEntry


async def entries(factory: async_sessionmaker[AsyncSession]) -> list[tuple[str, dict[str, object]]]:
    async with factory() as session:
        rows = await session.execute(
            select(AuditEntry.action, AuditEntry.detail).order_by(AuditEntry.id)
        )
        return [(action, dict(detail)) for action, detail in rows]


async def test_entries_are_written_by_the_commit_in_the_order_recorded(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with session_factory() as session:
        record(session, "household.read", 7, household_id=1)
        record(session, "report.saved", 7, household_id=1, how="form")
        assert await entries(session_factory) == []  # nothing before the commit
        await session.commit()
        await session.commit()  # a second commit writes nothing again
    assert await entries(session_factory) == [
        ("household.read", {"household_id": 1}),
        ("report.saved", {"household_id": 1, "how": "form"}),
    ]


async def test_a_rollback_or_a_close_drops_the_entries(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with session_factory() as session:
        record(session, "household.read", 7, household_id=1)
        await session.rollback()
        record(session, "household.read", 7, household_id=2)
        await session.scalar(select(func.count()).select_from(AuditEntry))
    async with session_factory() as session:
        record(session, "household.read", 7, household_id=3)
        await session.commit()
    assert await entries(session_factory) == [("household.read", {"household_id": 3})]
