"""Updates already handled, by Telegram's update_id: a second delivery of one is skipped.

Telegram delivers an update again when it did not see the answer to a webhook request,
and polling fetches an update again when the bot stopped before confirming it. Claiming
the update_id first, in its own transaction, lets the database decide which delivery is
handled: the second insert finds the row and does nothing.
"""

from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.base import utcnow
from models.system import HandledUpdate

# How long an update_id is remembered; Telegram gives up redelivering well within a day.
KEEP_HANDLED_UPDATES = timedelta(days=1)


async def claim_update(session: AsyncSession, bot_id: int, update_id: int) -> bool:
    """Record that this update is being handled and commit; False when it already was."""
    values = {"bot_id": bot_id, "update_id": update_id, "handled_at": utcnow()}
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else postgresql_insert
    statement = insert(HandledUpdate).values(values).on_conflict_do_nothing()
    result = await session.execute(statement)
    await session.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def release_update(session: AsyncSession, bot_id: int, update_id: int) -> None:
    """Forget a claim whose handling failed, so that a redelivery is handled; commits."""
    await session.execute(
        delete(HandledUpdate).where(
            HandledUpdate.bot_id == bot_id, HandledUpdate.update_id == update_id
        )
    )
    await session.commit()


async def purge_handled_updates(
    session: AsyncSession, older_than: timedelta = KEEP_HANDLED_UPDATES
) -> int:
    """Forget updates handled more than ``older_than`` ago; commits, returns how many."""
    result = await session.execute(
        delete(HandledUpdate).where(HandledUpdate.handled_at < utcnow() - older_than)
    )
    await session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
