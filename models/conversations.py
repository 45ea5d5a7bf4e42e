from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from models.base import utcnow
from models.system import FsmRecord


async def purge_conversations_older_than(session: AsyncSession, age: timedelta) -> int:
    """Forget conversations nobody has touched for ``age``; returns how many."""
    result = await session.execute(delete(FsmRecord).where(FsmRecord.updated_at < utcnow() - age))
    await session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
