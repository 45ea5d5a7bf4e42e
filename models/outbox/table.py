"""The outbox table, and queueing messages in the caller's transaction.

A row is ``pending`` until the sender claims it (``sending``, committed before the send),
then ``sent``, ``unreachable`` (blocked, never started), ``failed`` (retries exhausted or
refused) or ``pending`` again (flood control, a retry, a migrated group). Only rows left
``sending`` by a crash can be sent twice, and the sender bounds how many those are.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast

import orjson
from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    bindparam,
    delete,
    func,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.elements import TextClause

from models.base import Base, as_utc, utcnow
from models.messages import Action, Content, NoticeBody, encode

ERROR_LENGTH = 500


class OutboxStatus(StrEnum):
    pending = "pending"
    sending = "sending"
    sent = "sent"
    unreachable = "unreachable"
    failed = "failed"


SETTLED = (OutboxStatus.sent, OutboxStatus.unreachable, OutboxStatus.failed)

# At or above this priority a message is urgent (an alert): quiet hours do not hold it.
URGENT_PRIORITY = 10


class OutboxMessage(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint("kind IN ('text', 'notice')", name="kind"),
        CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'unreachable', 'failed')", name="status"
        ),
        # Delivery counts by cause. Nothing reads rows by member (members are never
        # deleted), and the claim order below serves every query by status.
        Index("ix_outbox_source", "source"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The recipient's address on the delivering channel (a Telegram chat id, of a member,
    # a group or a command-centre admin), read when the message was queued and kept for
    # per-recipient pacing; ``member_id`` names the member, when it is one.
    chat_id: Mapped[int] = mapped_column(BigInteger)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    # "text" (a catalog key and its parameters) or "notice" (a reference to one).
    kind: Mapped[str] = mapped_column(String(16))
    # ``models.messages.encode``: the content and the reader's actions, in no channel's shape.
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.pending)
    # Higher goes first: an alert must not wait behind a county-wide notice.
    priority: Mapped[int] = mapped_column(SmallInteger, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()
    # The channel's id of the delivered message (to edit it later).
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    # Enqueueing a key that is already there adds nothing, so callers may repeat themselves.
    dedupe_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    # What caused the message, e.g. "notice:12", for delivery counts.
    source: Mapped[str | None] = mapped_column(String(64))


# The claim's order, so that taking the next batch reads a few index entries instead of
# sorting every pending row.
Index(
    "ix_outbox_claim_order",
    OutboxMessage.status,
    OutboxMessage.priority.desc(),
    OutboxMessage.next_attempt_at,
    OutboxMessage.id,
)

# The table itself, for bulk statements that need no ORM bookkeeping.
OUTBOX = cast(Table, OutboxMessage.__table__)


@dataclass(frozen=True)
class OutgoingMessage:
    """One message to queue: to ``chat_id`` (and ``member_id`` when the reader is a
    member), saying ``content``, offering ``actions``."""

    chat_id: int
    content: Content
    member_id: int | None = None
    actions: tuple[Action, ...] = ()
    dedupe_key: str | None = None
    source: str | None = None
    priority: int = 0
    not_before: datetime | None = None
    # Someone must act on it (a claim to decide): when the reader cannot be reached, the
    # command centre gets it instead, so that nothing waits on a person who never hears.
    # The value keys those copies: each command-centre address gets one per key, however
    # many readers were missed.
    fallback_key: str | None = None


async def enqueue(session: AsyncSession, messages: Sequence[OutgoingMessage]) -> int:
    """Add ``messages`` to the caller's transaction (no commit): one bulk insert, and a
    message whose ``dedupe_key`` is already queued is skipped. Marks the session so that
    whoever commits it can tell the sender (``models.messages.MessagesWaiting``)."""
    now = utcnow()
    return await enqueue_rows(
        session,
        [
            outbox_row(
                message.chat_id,
                _payload(message),
                member_id=message.member_id,
                kind="notice" if isinstance(message.content, NoticeBody) else "text",
                priority=message.priority,
                dedupe_key=message.dedupe_key,
                source=message.source,
                next_attempt_at=as_utc(message.not_before) if message.not_before else now,
                created_at=now,
            )
            for message in messages
        ],
    )


def outbox_row(
    chat_id: int,
    payload: str,
    *,
    created_at: datetime,
    next_attempt_at: datetime,
    member_id: int | None = None,
    kind: str = "text",
    priority: int = 0,
    dedupe_key: str | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    """One pending row as ``enqueue_rows`` inserts it; ``payload`` is ``encode``'s JSON
    (``json.dumps`` or ``orjson.dumps``), one string for every reader of the same content."""
    return {
        "chat_id": chat_id,
        "member_id": member_id,
        "kind": kind,
        "payload": payload,
        "status": OutboxStatus.pending.value,
        "priority": priority,
        "attempts": 0,
        "next_attempt_at": next_attempt_at,
        "created_at": created_at,
        "dedupe_key": dedupe_key,
        "source": source,
    }


async def enqueue_rows(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    """``enqueue`` for rows already built (``outbox_row``, the payload serialized once
    however many read it): the lean path of a sweep or a broadcast that queues thousands of
    messages. A run of rows alike but for reader, payload and key goes in as one statement whose
    only row-by-row parameter is a JSON array of those four: no per-row work in Python
    beyond making that array."""
    if not rows:
        return 0
    # Runs of rows alike, in the given order: ids, and so the sender's order among equals,
    # follow it.
    batches: list[tuple[tuple[Any, ...], list[tuple[Any, ...]]]] = []
    for row in rows:
        shared = tuple(row[name] for name in _SHARED)
        if not batches or batches[-1][0] != shared:
            batches.append((shared, []))
        batches[-1][1].append(tuple(row[name] for name in _VARYING))
    statement = _BULK_INSERT[session.get_bind().dialect.name]
    for shared, varying in batches:
        parameters = dict(zip(_SHARED, shared, strict=True))
        parameters["rows"] = orjson.dumps(varying).decode()
        await session.execute(statement, parameters)
    session.info[QUEUED] = True
    return len(rows)


def _payload(message: OutgoingMessage) -> str:
    payload = encode(message.content, message.actions)
    if message.fallback_key:
        payload[FALLBACK] = message.fallback_key
    return json.dumps(payload)


# What differs from reader to reader of a batch, and what a batch shares.
_VARYING = ("chat_id", "member_id", "payload", "dedupe_key")
_SHARED = ("kind", "status", "priority", "attempts", "next_attempt_at", "created_at", "source")
_COLUMNS = ", ".join((*_VARYING, *_SHARED))
_BINDS = ", ".join(f":{name}" for name in _SHARED)


def _bulk_insert(select_rows: str) -> TextClause:
    return text(
        f"INSERT INTO {OUTBOX.name} ({_COLUMNS}) {select_rows.format(shared=_BINDS)} "
        "ON CONFLICT (dedupe_key) DO NOTHING"
    ).bindparams(*(bindparam(name, type_=OUTBOX.c[name].type) for name in _SHARED))


_BULK_INSERT = {
    # ``WHERE true`` tells SQLite's parser that ON CONFLICT belongs to the INSERT.
    "sqlite": _bulk_insert(
        "SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, {shared} "
        "FROM json_each(:rows) WHERE true"
    ),
    "postgresql": _bulk_insert(
        "SELECT (value ->> 0)::bigint, (value ->> 1)::integer, (value ->> 2)::json, "
        "value ->> 3, {shared} FROM json_array_elements(CAST(:rows AS json))"
    ),
}


# Marks a payload whose message goes to the command centre when its reader is unreachable.
FALLBACK = "fallback"

# ``session.info`` key set by ``enqueue``: the session queued messages since it was opened.
QUEUED = "wuji.outbox.queued"


async def delivery_counts(session: AsyncSession, source: str) -> dict[OutboxStatus, int]:
    """How many of the messages of ``source`` are in each status (every status present)."""
    counts = dict.fromkeys(OutboxStatus, 0)
    rows = await session.execute(
        select(OutboxMessage.status, func.count())
        .where(OutboxMessage.source == source)
        .group_by(OutboxMessage.status)
    )
    for status, count in rows:
        counts[OutboxStatus(status)] = count
    return counts


async def purge_settled(session: AsyncSession, older_than: timedelta) -> int:
    """Delete rows settled (sent, unreachable, failed) longer ago than ``older_than``.
    Commits."""
    before = utcnow() - older_than
    result = await session.execute(
        delete(OutboxMessage).where(
            OutboxMessage.status.in_(SETTLED), OutboxMessage.created_at < before
        ),
        execution_options={"synchronize_session": False},
    )
    await session.commit()
    return int(getattr(result, "rowcount", 0) or 0)


def clip(text: str | None, length: int = ERROR_LENGTH) -> str | None:
    return None if text is None else text[:length]
