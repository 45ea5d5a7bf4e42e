"""Update ids already handled: claimed once, given back on failure, purged after a day."""

from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.base import utcnow
from models.system import HandledUpdate
from models.updates import claim_update, purge_handled_updates, release_update

BOT, OTHER_BOT = 123456, 654321
# Telegram's update ids are positive 32-bit numbers; bot ids already pass 2**32.
UPDATE = 2**31 - 5


async def test_an_update_is_claimed_once_per_bot(session: AsyncSession) -> None:
    assert await claim_update(session, BOT, UPDATE)
    assert not await claim_update(session, BOT, UPDATE)
    assert await claim_update(session, OTHER_BOT, UPDATE)
    assert await claim_update(session, 8_000_000_000, UPDATE)
    await release_update(session, BOT, UPDATE)
    assert await claim_update(session, BOT, UPDATE)


async def test_claims_older_than_a_day_are_purged(session: AsyncSession) -> None:
    for update_id in (1, 2, 3):
        assert await claim_update(session, BOT, update_id)
    await session.execute(
        update(HandledUpdate)
        .where(HandledUpdate.update_id.in_([1, 2]))
        .values(handled_at=utcnow() - timedelta(days=1, minutes=1))
    )
    await session.commit()

    assert await purge_handled_updates(session, timedelta(days=1)) == 2
    assert await session.scalar(select(func.count()).select_from(HandledUpdate)) == 1
    assert await claim_update(session, BOT, 1)  # forgotten, so a new delivery would count
    assert not await claim_update(session, BOT, 3)
    assert await purge_handled_updates(session, timedelta(days=1)) == 0
