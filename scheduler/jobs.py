"""The clock's jobs. Each opens its own session."""

import logging
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.base import utcnow
from models.conversations import purge_conversations_older_than
from models.outbox.table import purge_settled
from models.traffic import Traffic, traffic_since

logger = logging.getLogger(__name__)


async def purge_stale_conversations(
    session_factory: async_sessionmaker[AsyncSession], older_than: timedelta
) -> int:
    async with session_factory() as session:
        purged = await purge_conversations_older_than(session, older_than)
    if purged:
        logger.info("purged %d conversations idle for more than %s", purged, older_than)
    return purged


async def purge_outbox(
    session_factory: async_sessionmaker[AsyncSession], older_than: timedelta
) -> int:
    async with session_factory() as session:
        purged = await purge_settled(session, older_than)
    if purged:
        logger.info("purged %d settled outbox messages older than %s", purged, older_than)
    return purged


async def log_traffic(
    session_factory: async_sessionmaker[AsyncSession], span: timedelta = timedelta(hours=1)
) -> Traffic:
    """The hourly line: what came in and went out in the last ``span``."""
    async with session_factory() as session:
        traffic = await traffic_since(session, utcnow() - span)
    logger.info(
        "traffic, last %s: %d updates in, %d messages sent, %d not delivered; %d waiting",
        span,
        traffic.updates_in,
        traffic.sent,
        traffic.not_delivered,
        traffic.waiting,
    )
    return traffic
