"""After an alert went up: the first acknowledgement takes it and is told to the others;
one nobody acknowledged in time goes on to the command centre, once; old alerts are
purged. Each step writes its messages in the transaction that records it, with dedupe keys."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.access import scope_of
from models.alerts import (
    ALERT_PRIORITY,
    LARGEST_ID,
    NAME_LENGTH,
    Alert,
    source_of,
    to_command_centre,
)
from models.audit import record
from models.base import utcnow
from models.chain import ancestors_above, holders_at, private_addresses
from models.messages import Text
from models.org import Member, Node
from models.outbox.table import OutgoingMessage, enqueue
from models.posts import Recipient

# --- acknowledging ----------------------------------------------------------------------


class Acknowledged(StrEnum):
    # This press took it.
    taken = "taken"
    # Somebody took it before.
    already = "already"
    # The presser does not stand above the alert's node (nor is the command centre).
    refused = "refused"
    missing = "missing"


@dataclass(frozen=True)
class AckOutcome:
    outcome: Acknowledged
    # Who holds it (the presser when ``taken``).
    by_name: str | None = None


async def acknowledge_alert(
    session: AsyncSession,
    alert_id: int,
    telegram_id: int,
    name: str,
    command_centre: Sequence[int],
) -> AckOutcome:
    """The first acknowledgement takes the alert and is told to everyone else it went to;
    only those above the alert's node and the command centre may. Commits."""
    # An id from a button; PostgreSQL refuses one past int32 rather than finding nothing.
    alert = await session.get(Alert, alert_id) if 0 < alert_id <= LARGEST_ID else None
    node = await session.get(Node, alert.node_id) if alert else None
    if alert is None or node is None:
        return AckOutcome(Acknowledged.missing)
    scope = await scope_of(session, telegram_id, list(command_centre))
    if not scope.manages(node):
        return AckOutcome(Acknowledged.refused)
    member = await session.scalar(select(Member).where(Member.telegram_id == telegram_id))
    by_name = (member.name if member else name)[:NAME_LENGTH]
    # A conditional update, so that two presses at once take it once (on SQLite too).
    result = await session.execute(
        update(Alert)
        .where(Alert.id == alert_id, Alert.acknowledged_at.is_(None))
        .values(
            acknowledged_at=utcnow(),
            acknowledged_by_telegram_id=telegram_id,
            acknowledged_by_name=by_name,
        ),
        execution_options={"synchronize_session": False},
    )
    if not getattr(result, "rowcount", 0):
        await session.rollback()
        holder = await session.scalar(
            select(Alert.acknowledged_by_name).where(Alert.id == alert_id)
        )
        return AckOutcome(Acknowledged.already, holder)
    told = await _everyone_told(session, alert, node, command_centre)
    others = [recipient for recipient in told if recipient.telegram_id != telegram_id]
    await enqueue(
        session,
        [
            OutgoingMessage(
                chat_id=recipient.telegram_id,
                member_id=recipient.member_id,
                content=Text("alert.taken_by", {"id": alert_id, "name": by_name}),
                dedupe_key=f"{source_of(alert_id)}:taken:{recipient.telegram_id}",
                source=source_of(alert_id),
                priority=ALERT_PRIORITY,
            )
            for recipient in others
        ],
    )
    record(session, "alert.acknowledged", telegram_id, alert_id=alert_id)
    await session.commit()
    return AckOutcome(Acknowledged.taken, by_name)


async def _everyone_told(
    session: AsyncSession, alert: Alert, node: Node, command_centre: Sequence[int]
) -> list[Recipient]:
    """Those who hold the posts above the alert's node now (the people it went to), the
    sender, and the command centre once the alert went there."""
    people = await holders_at(session, ancestors_above(node))
    if alert.raised_by_member_id is not None:
        sender = await session.get(Member, alert.raised_by_member_id)
        if sender is not None and all(p.member_id != sender.id for p in people):
            people.append(Recipient(sender.telegram_id, sender.id))
    await session.refresh(alert)
    if alert.escalated_at is not None:
        known = {recipient.telegram_id for recipient in people}
        people.extend(r for r in private_addresses(command_centre) if r.telegram_id not in known)
    return [recipient for recipient in people if recipient.telegram_id > 0]


# --- escalating -------------------------------------------------------------------------


async def escalate_unacknowledged(
    session: AsyncSession,
    after: timedelta,
    command_centre: Sequence[int],
    now: datetime | None = None,
) -> list[int]:
    """Every alert nobody acknowledged within ``after`` goes on to the command centre, once
    (``escalated_at`` and the dedupe keys both say so), each in its own transaction.
    Returns their ids."""
    moment = now or utcnow()
    due = list(
        await session.scalars(
            select(Alert.id)
            .where(
                Alert.acknowledged_at.is_(None),
                Alert.escalated_at.is_(None),
                Alert.created_at <= moment - after,
            )
            .order_by(Alert.id)
        )
    )
    escalated: list[int] = []
    for alert_id in due:
        claimed = await session.execute(
            update(Alert)
            .where(
                Alert.id == alert_id,
                Alert.acknowledged_at.is_(None),
                Alert.escalated_at.is_(None),
            )
            .values(escalated_at=moment),
            execution_options={"synchronize_session": False},
        )
        if not getattr(claimed, "rowcount", 0):
            await session.rollback()
            continue
        await to_command_centre(session, alert_id, command_centre, late=True)
        record(session, "alert.escalated", None, alert_id=alert_id)
        await session.commit()
        escalated.append(alert_id)
    return escalated


async def purge_alerts_older_than(session: AsyncSession, retention_days: int) -> int:
    """Alerts raised more than ``retention_days`` ago go, with the household answers and
    the words they keep, as old reports do. Commits."""
    cutoff = utcnow() - timedelta(days=retention_days)
    result = await session.execute(
        delete(Alert).where(Alert.created_at < cutoff),
        execution_options={"synchronize_session": False},
    )
    await session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
