"""What changed: the fingerprint the live updates watch."""

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.notices import NoticeRecipient
from models.org import Member
from models.outbox.table import OutboxMessage, OutboxStatus
from models.system import AuditEntry


async def data_version(session: AsyncSession) -> tuple[object, ...]:
    """A cheap fingerprint of everything the console shows: it changes when a report is
    saved, an alert or need moves, a notice is delivered or acknowledged, a post changes
    hands (each of those is audited or timestamped). Console views are audited too, so a
    page opened elsewhere makes the streams look once more."""
    row = (
        await session.execute(
            select(
                select(func.max(AuditEntry.id)).scalar_subquery(),
                select(func.max(NoticeRecipient.acked_at)).scalar_subquery(),
                # Queued (the newest id) and delivered (fewer outstanding): both read a few
                # index entries, where counting the sent rows read a day's worth of them.
                select(func.max(OutboxMessage.id)).scalar_subquery(),
                select(func.count(OutboxMessage.id))
                .where(
                    OutboxMessage.status.in_(
                        (OutboxStatus.pending.value, OutboxStatus.sending.value)
                    )
                )
                .scalar_subquery(),
                select(func.count(Member.id)).where(Member.reachable.is_(False)).scalar_subquery(),
            )
        )
    ).one()
    return tuple(row)
