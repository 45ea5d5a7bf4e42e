"""The bot's traffic over a span, for the hourly line in the log: updates that came in
(every process records them, ``handled_updates``) and what became of the outbox."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.outbox.table import OutboxMessage, OutboxStatus
from models.system import HandledUpdate

WAITING = (OutboxStatus.pending, OutboxStatus.sending)
NOT_DELIVERED = (OutboxStatus.unreachable, OutboxStatus.failed)


@dataclass(frozen=True)
class Traffic:
    updates_in: int
    # Outbox messages sent since; queued since and given up on (unreachable or failed);
    # waiting now (quiet hours, flood control, retries).
    sent: int
    not_delivered: int
    waiting: int


async def traffic_since(session: AsyncSession, since: datetime) -> Traffic:
    updates_in = await session.scalar(select(func.count()).where(HandledUpdate.handled_at >= since))
    sent = await session.scalar(
        select(func.count()).where(
            OutboxMessage.status == OutboxStatus.sent, OutboxMessage.sent_at >= since
        )
    )
    not_delivered = await session.scalar(
        select(func.count()).where(
            OutboxMessage.status.in_(NOT_DELIVERED), OutboxMessage.created_at >= since
        )
    )
    waiting = await session.scalar(select(func.count()).where(OutboxMessage.status.in_(WAITING)))
    return Traffic(updates_in or 0, sent or 0, not_delivered or 0, waiting or 0)
