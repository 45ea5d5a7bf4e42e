"""The clock's work for alerts and needs: alerts nobody acknowledged in time go on to the
command centre, need tickets nobody could be told of go there too, and overdue tickets
climb to the zone lead (``models.alert_followup``, ``models.need_followup``)."""

import logging
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Config
from models.alert_followup import escalate_unacknowledged, purge_alerts_older_than
from models.need_followup import purge_needs_older_than, sweep_needs
from models.needs import NeedLimits

logger = logging.getLogger(__name__)

# Seconds between sweeps: an escalation is at most this late.
SWEEP_S = 30


async def sweep_alerts_and_needs(
    session_factory: async_sessionmaker[AsyncSession], config: Config
) -> int:
    """Returns how many alerts and tickets were moved on."""
    command_centre = config.admins.telegram_ids
    async with session_factory() as session:
        escalated = await escalate_unacknowledged(
            session, timedelta(minutes=config.alerts.escalate_after_min), command_centre
        )
        moved = await sweep_needs(session, NeedLimits(config.needs.due_hours), command_centre)
    if escalated:
        logger.info("alerts %s went on to the command centre", escalated)
    if moved:
        logger.info("%d need tickets moved on", moved)
    return len(escalated) + moved


async def purge_old_alerts_and_needs(
    session_factory: async_sessionmaker[AsyncSession], retention_days: int
) -> int:
    """Alerts and settled tickets older than the reports' retention: they hold household
    answers too."""
    async with session_factory() as session:
        purged = await purge_alerts_older_than(session, retention_days)
        purged += await purge_needs_older_than(session, retention_days)
    if purged:
        logger.info("purged %d alerts and need tickets older than %d days", purged, retention_days)
    return purged
