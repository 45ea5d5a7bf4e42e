"""The clock's work for household reports: open each round at its opening time (so the
households expected in it are frozen then, not at the first /report), and purge reports
past the retention."""

import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.forms import Form
from models.rounds import RoundSchedule, current_round, purge_rounds_older_than

logger = logging.getLogger(__name__)

# Seconds between looks for a round to open: a round opens at most this late.
OPEN_SWEEP_S = 60


async def open_due_round(
    session_factory: async_sessionmaker[AsyncSession], schedule: RoundSchedule, form: Form
) -> None:
    """Idempotent: the round already open, or none due, changes nothing."""
    async with session_factory() as session:
        await current_round(session, schedule, form)


async def purge_old_reports(
    session_factory: async_sessionmaker[AsyncSession], retention_days: int
) -> None:
    async with session_factory() as session:
        purged = await purge_rounds_older_than(session, retention_days)
    if purged:
        logger.info("purged %d household reports older than %d days", purged, retention_days)
