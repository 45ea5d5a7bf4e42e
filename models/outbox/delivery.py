"""What the sender claims from the outbox, and what became of each send.

The sender is one per deployment: it claims due rows (``sending``, committed before
anything is sent), hands each to a channel's ``Renderer``, sends, and records outcomes in
batches.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeVar

from sqlalchemy import bindparam, func, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.alert_views import AlertContent, alert_contents
from models.base import as_utc, utcnow
from models.charts import chart_contents
from models.messages import Action, AlertBody, Chart, Content, NoticeBody, decode
from models.notice_delivery import NoticeContent, notice_contents
from models.org import Member
from models.outbox.reachability import mark_unreachable, member_for, migrate_chat
from models.outbox.table import (
    FALLBACK,
    OUTBOX,
    URGENT_PRIORITY,
    OutboxMessage,
    OutboxStatus,
    OutgoingMessage,
    clip,
    enqueue,
)


@dataclass(frozen=True)
class ClaimedMessage:
    """A row being sent, with what its renderer needs: the reader's language (None: the
    default) and, for a notice or an alert, its content."""

    id: int
    chat_id: int
    member_id: int | None
    content: Content
    actions: tuple[Action, ...]
    attempts: int
    locale: str | None = None
    notice: NoticeContent | None = None
    alert: AlertContent | None = None
    # A chart's image (PNG).
    image: bytes | None = None


RenderedT_co = TypeVar("RenderedT_co", covariant=True)


class Renderer(Protocol[RenderedT_co]):
    """A channel's way of showing a message: the Telegram adapter renders a Bot API call."""

    def render(self, message: ClaimedMessage) -> RenderedT_co: ...


async def release_claims(session: AsyncSession, ids: Sequence[int] | None = None) -> int:
    """Put claimed rows back to pending: those of ``ids``, or every one (after a crash, at
    start: only one sender runs). Commits."""
    statement = (
        update(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.sending)
        .values(status=OutboxStatus.pending, claimed_at=None)
    )
    if ids is not None:
        statement = statement.where(OutboxMessage.id.in_(ids))
    result = await session.execute(statement, execution_options={"synchronize_session": False})
    await session.commit()
    return int(getattr(result, "rowcount", 0) or 0)


async def claim_due(
    session: AsyncSession, limit: int, *, urgent_only: bool = False
) -> list[ClaimedMessage]:
    """Mark up to ``limit`` due pending rows ``sending`` and commit, so that a row is
    claimed before it is sent. Highest priority first, then oldest; in quiet hours
    (``urgent_only``) only urgent ones, the rest waiting for the morning."""
    now = utcnow()
    due = (
        select(OutboxMessage.id)
        .where(
            OutboxMessage.status == OutboxStatus.pending,
            OutboxMessage.next_attempt_at <= now,
            OutboxMessage.priority >= URGENT_PRIORITY if urgent_only else true(),
        )
        .order_by(OutboxMessage.priority.desc(), OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    table = OUTBOX
    rows = await session.execute(
        update(table)
        .where(table.c.id.in_(due.scalar_subquery()))
        .values(status=OutboxStatus.sending, claimed_at=now)
        .returning(
            table.c.id,
            table.c.chat_id,
            table.c.member_id,
            table.c.payload,
            table.c.attempts,
            table.c.priority,
            table.c.next_attempt_at,
        )
    )
    claimed = sorted(
        rows.all(), key=lambda row: (-row.priority, as_utc(row.next_attempt_at), row.id)
    )
    await session.commit()
    if not claimed:
        return []
    decoded = [decode(row.payload) for row in claimed]
    locales = await _locales(session, [row.chat_id for row in claimed if row.chat_id > 0])
    notice_ids = {content.notice_id for content, _ in decoded if isinstance(content, NoticeBody)}
    notices = await notice_contents(session, notice_ids) if notice_ids else {}
    alert_ids = {content.alert_id for content, _ in decoded if isinstance(content, AlertBody)}
    alerts = await alert_contents(session, alert_ids) if alert_ids else {}
    images = await chart_contents(
        session, {content.image_id for content, _ in decoded if isinstance(content, Chart)}
    )
    return [
        ClaimedMessage(
            id=row.id,
            chat_id=row.chat_id,
            member_id=row.member_id,
            content=content,
            actions=actions,
            attempts=row.attempts,
            locale=locales.get(row.chat_id),
            notice=notices.get(content.notice_id) if isinstance(content, NoticeBody) else None,
            alert=alerts.get(content.alert_id) if isinstance(content, AlertBody) else None,
            image=images.get(content.image_id) if isinstance(content, Chart) else None,
        )
        for row, (content, actions) in zip(claimed, decoded, strict=True)
    ]


async def _locales(session: AsyncSession, chat_ids: list[int]) -> dict[int, str | None]:
    """Each reader's language, read now: a member who switched since the message was
    queued reads it in the new one."""
    if not chat_ids:
        return {}
    rows = await session.execute(
        select(Member.telegram_id, Member.locale).where(Member.telegram_id.in_(set(chat_ids)))
    )
    return {telegram_id: locale for telegram_id, locale in rows}


async def next_due_at(session: AsyncSession, *, urgent_only: bool = False) -> datetime | None:
    """When the earliest pending row (urgent only, in quiet hours) falls due (None:
    nothing pending)."""
    moment = await session.scalar(
        select(func.min(OutboxMessage.next_attempt_at)).where(
            OutboxMessage.status == OutboxStatus.pending,
            OutboxMessage.priority >= URGENT_PRIORITY if urgent_only else true(),
        )
    )
    return None if moment is None else as_utc(moment)


async def outstanding(session: AsyncSession) -> int:
    """Rows not yet settled: pending or being sent."""
    count = await session.scalar(
        select(func.count()).where(
            OutboxMessage.status.in_((OutboxStatus.pending, OutboxStatus.sending))
        )
    )
    return int(count or 0)


@dataclass(frozen=True)
class Sent:
    id: int
    attempts: int
    telegram_message_id: int | None
    at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class Retry:
    """Back to pending: flood control, a server error, a timeout, or a chat that is busy."""

    id: int
    attempts: int
    not_before: datetime
    error: str | None


@dataclass(frozen=True)
class Deferred:
    """Claimed, but its chat has enough queued: back to pending until its turn."""

    id: int
    not_before: datetime


@dataclass(frozen=True)
class Failed:
    id: int
    attempts: int
    error: str


@dataclass(frozen=True)
class Unreachable:
    id: int
    attempts: int
    chat_id: int
    member_id: int | None
    reason: str


@dataclass(frozen=True)
class Migrated:
    """The group became a supergroup: ``new_chat_id`` replaces it everywhere, and the
    message goes again."""

    id: int
    old_chat_id: int
    new_chat_id: int


Outcome = Sent | Retry | Deferred | Failed | Unreachable | Migrated


async def _fall_back(
    session: AsyncSession, row_ids: list[int], command_centre: Sequence[int]
) -> None:
    """Messages someone must act on, which their reader will never get, go to the command
    centre instead (once each: their dedupe keys say so)."""
    rows = await session.execute(
        select(
            OutboxMessage.chat_id,
            OutboxMessage.payload,
            OutboxMessage.source,
            OutboxMessage.priority,
        ).where(OutboxMessage.id.in_(row_ids))
    )
    messages: list[OutgoingMessage] = []
    for chat_id, payload, source, priority in rows:
        fallback_key = payload.get(FALLBACK)
        if not fallback_key or chat_id in command_centre:
            continue
        content, actions = decode(payload)
        messages.extend(
            OutgoingMessage(
                chat_id=address,
                content=content,
                actions=actions,
                # The key the command centre would have had, had it been asked at once.
                dedupe_key=f"{fallback_key}:{address}",
                source=source,
                priority=priority,
            )
            for address in command_centre
        )
    await enqueue(session, messages)


async def record_outcomes(
    session: AsyncSession, outcomes: Sequence[Outcome], command_centre: Sequence[int] = ()
) -> None:
    """Write what became of a batch of sends, in one transaction. Commits."""
    table = OUTBOX
    sent = [outcome for outcome in outcomes if isinstance(outcome, Sent)]
    if sent:
        await session.execute(
            update(table)
            .where(table.c.id == bindparam("row_id"))
            .values(
                status=OutboxStatus.sent,
                attempts=bindparam("row_attempts"),
                sent_at=bindparam("row_sent_at"),
                telegram_message_id=bindparam("row_message_id"),
                last_error=None,
            ),
            [
                {
                    "row_id": outcome.id,
                    "row_attempts": outcome.attempts,
                    "row_sent_at": outcome.at,
                    "row_message_id": outcome.telegram_message_id,
                }
                for outcome in sent
            ],
        )
    retries = [outcome for outcome in outcomes if isinstance(outcome, Retry)]
    if retries:
        await session.execute(
            update(table)
            .where(table.c.id == bindparam("row_id"))
            .values(
                status=OutboxStatus.pending,
                attempts=bindparam("row_attempts"),
                next_attempt_at=bindparam("row_not_before"),
                last_error=bindparam("row_error"),
                claimed_at=None,
            ),
            [
                {
                    "row_id": outcome.id,
                    "row_attempts": outcome.attempts,
                    "row_not_before": outcome.not_before,
                    "row_error": clip(outcome.error),
                }
                for outcome in retries
            ],
        )
    deferred = [outcome for outcome in outcomes if isinstance(outcome, Deferred)]
    if deferred:
        await session.execute(
            update(table)
            .where(table.c.id == bindparam("row_id"))
            .values(
                status=OutboxStatus.pending,
                next_attempt_at=bindparam("row_not_before"),
                claimed_at=None,
            ),
            [{"row_id": outcome.id, "row_not_before": outcome.not_before} for outcome in deferred],
        )
    settled = [outcome for outcome in outcomes if isinstance(outcome, Failed | Unreachable)]
    if settled:
        await session.execute(
            update(table)
            .where(table.c.id == bindparam("row_id"))
            .values(
                status=bindparam("row_status"),
                attempts=bindparam("row_attempts"),
                last_error=bindparam("row_error"),
                claimed_at=None,
            ),
            [
                {
                    "row_id": outcome.id,
                    "row_status": OutboxStatus.failed
                    if isinstance(outcome, Failed)
                    else OutboxStatus.unreachable,
                    "row_attempts": outcome.attempts,
                    "row_error": clip(
                        outcome.error if isinstance(outcome, Failed) else outcome.reason
                    ),
                }
                for outcome in settled
            ],
        )
    undelivered = [outcome.id for outcome in settled]
    if undelivered and command_centre:
        await _fall_back(session, undelivered, command_centre)
    for outcome in outcomes:
        if isinstance(outcome, Unreachable):
            member = await member_for(session, outcome.member_id, outcome.chat_id)
            if member is not None:
                await mark_unreachable(session, member, outcome.reason, command_centre)
        elif isinstance(outcome, Migrated):
            await migrate_chat(session, outcome.old_chat_id, outcome.new_chat_id)
            await session.execute(
                update(table)
                .where(table.c.id == outcome.id)
                .values(
                    status=OutboxStatus.pending,
                    chat_id=outcome.new_chat_id,
                    next_attempt_at=utcnow(),
                    claimed_at=None,
                )
            )
    await session.commit()
