"""The clock's work for claims: close those nobody decided in time, telling their
volunteers (the backstop for a claim whose deciders never answered or were never reached)."""

import logging
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Config
from models.claims import expire_claims

logger = logging.getLogger(__name__)

# How often the clock looks for claims to expire.
EXPIRY_SWEEP_S = 300


async def expire_undecided_claims(
    session_factory: async_sessionmaker[AsyncSession], config: Config
) -> int:
    async with session_factory() as session:
        expired = await expire_claims(
            session, after=timedelta(hours=config.claims.expire_after_hours)
        )
    if expired:
        logger.info("expired undecided claims %s", expired)
    return len(expired)
