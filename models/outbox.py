"""The outbox: every message that is not a direct reply, written in the transaction of the
event that causes it, then delivered by the sender (``scheduler/sender.py``).

A row is ``pending`` until the sender claims it (``sending``, committed before the send),
then ``sent``, ``unreachable`` (blocked, never started), ``failed`` (retries exhausted or
refused) or ``pending`` again (flood control, a retry, a migrated group). Only rows left
``sending`` by a crash can be sent twice, and the sender bounds how many those are.
"""

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, cast

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
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, as_utc, utcnow
from models.org import Member, Node, Post
from models.people import GroupChat
from models.posts import superiors_of

ERROR_LENGTH = 500


class MessageKind(StrEnum):
    text = "text"
    copy = "copy"
    photo = "photo"
    document = "document"


class OutboxStatus(StrEnum):
    pending = "pending"
    sending = "sending"
    sent = "sent"
    unreachable = "unreachable"
    failed = "failed"


class OutboxMessage(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint("kind IN ('text', 'copy', 'photo', 'document')", name="kind"),
        CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'unreachable', 'failed')", name="status"
        ),
        Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_outbox_source", "source"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16))
    # text, reply_markup (a dict as the Bot API takes it), from_chat_id, message_id,
    # file_id, caption: whichever the kind needs.
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
    """One message to enqueue. Texts and captions are HTML: the caller escapes them."""

    chat_id: int
    text: str | None = None
    kind: MessageKind = MessageKind.text
    member_id: int | None = None
    reply_markup: dict[str, Any] | None = None
    file_id: str | None = None
    caption: str | None = None
    from_chat_id: int | None = None
    message_id: int | None = None
    dedupe_key: str | None = None
    source: str | None = None
    priority: int = 0
    not_before: datetime | None = None

    def __post_init__(self) -> None:
        needs = {
            MessageKind.text: ("text",),
            MessageKind.copy: ("from_chat_id", "message_id"),
            MessageKind.photo: ("file_id",),
            MessageKind.document: ("file_id",),
        }[MessageKind(self.kind)]
        missing = [name for name in needs if getattr(self, name) in (None, "")]
        if missing:
            raise ValueError(f"a {self.kind} message needs {', '.join(missing)}")

    def payload(self) -> dict[str, Any]:
        fields = ("text", "reply_markup", "file_id", "caption", "from_chat_id", "message_id")
        return {name: getattr(self, name) for name in fields if getattr(self, name) is not None}


async def enqueue(session: AsyncSession, messages: Sequence[OutgoingMessage]) -> None:
    """Add ``messages`` to the caller's transaction (no commit): one bulk insert, and a
    message whose ``dedupe_key`` is already queued is skipped."""
    if not messages:
        return
    now = utcnow()
    rows = [
        {
            "chat_id": message.chat_id,
            "member_id": message.member_id,
            "kind": MessageKind(message.kind).value,
            "payload": message.payload(),
            "status": OutboxStatus.pending.value,
            "priority": message.priority,
            "attempts": 0,
            "next_attempt_at": as_utc(message.not_before) if message.not_before else now,
            "created_at": now,
            "dedupe_key": message.dedupe_key,
            "source": message.source,
        }
        for message in messages
    ]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(OUTBOX).on_conflict_do_nothing(index_elements=["dedupe_key"])
    await session.execute(statement, rows)


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


# --- for the sender -------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimedMessage:
    id: int
    chat_id: int
    member_id: int | None
    kind: MessageKind
    payload: dict[str, Any]
    attempts: int


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


async def claim_due(session: AsyncSession, limit: int) -> list[ClaimedMessage]:
    """Mark up to ``limit`` due pending rows ``sending`` and commit, so that a row is
    claimed before it is sent. Highest priority first, then oldest."""
    now = utcnow()
    due = (
        select(OutboxMessage.id)
        .where(OutboxMessage.status == OutboxStatus.pending, OutboxMessage.next_attempt_at <= now)
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
            table.c.kind,
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
    return [
        ClaimedMessage(
            row.id, row.chat_id, row.member_id, MessageKind(row.kind), row.payload, row.attempts
        )
        for row in claimed
    ]


async def next_due_at(session: AsyncSession) -> datetime | None:
    """When the earliest pending row falls due (None: nothing pending)."""
    moment = await session.scalar(
        select(func.min(OutboxMessage.next_attempt_at)).where(
            OutboxMessage.status == OutboxStatus.pending
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
                    "row_error": _clip(outcome.error),
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
                    "row_error": _clip(
                        outcome.error if isinstance(outcome, Failed) else outcome.reason
                    ),
                }
                for outcome in settled
            ],
        )
    for outcome in outcomes:
        if isinstance(outcome, Unreachable):
            member = await _member_for(session, outcome.member_id, outcome.chat_id)
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


async def migrate_chat(session: AsyncSession, old_chat_id: int, new_chat_id: int) -> None:
    """A group became a supergroup: its binding and its queued messages follow the new id."""
    bound = select(GroupChat.chat_id).where(GroupChat.chat_id == old_chat_id)
    taken = select(GroupChat.chat_id).where(GroupChat.chat_id == new_chat_id)
    if await session.scalar(bound) is not None:
        if await session.scalar(taken) is None:
            await session.execute(
                update(GroupChat)
                .where(GroupChat.chat_id == old_chat_id)
                .values(chat_id=new_chat_id),
                execution_options={"synchronize_session": False},
            )
        else:  # the supergroup was bound on its own meanwhile: keep that binding
            await session.execute(
                delete(GroupChat).where(GroupChat.chat_id == old_chat_id),
                execution_options={"synchronize_session": False},
            )
    await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.chat_id == old_chat_id,
            OutboxMessage.status.in_((OutboxStatus.pending, OutboxStatus.sending)),
        )
        .values(chat_id=new_chat_id),
        execution_options={"synchronize_session": False},
    )


async def mark_unreachable(
    session: AsyncSession, member: Member, reason: str, command_centre: Sequence[int] = ()
) -> None:
    """Flag ``member`` and, when this is news, tell whoever stands above each of its posts
    (the command centre above a zone), so that nobody silently drops out. No commit."""
    if not member.reachable:
        return
    member.reachable = False
    member.unreachable_reason = _clip(reason, 200)
    posts = (
        await session.execute(
            select(Post.node_id, Post.role, Node.path, Node.parent_id)
            .join(Node, Node.id == Post.node_id)
            .where(Post.holder_id == member.id)
            .order_by(Node.path, Post.role)
        )
    ).all()
    told: set[int] = set()
    messages: list[OutgoingMessage] = []
    day = utcnow().date().isoformat()
    for node_id, role, path, parent_id in posts:
        if parent_id is None:
            recipients = list(command_centre)
        else:
            recipients = [superior.telegram_id for superior in await superiors_of(session, node_id)]
        text = _unreachable_text(member.name, path, role, reason)
        for chat_id in recipients:
            if chat_id in told or chat_id == member.telegram_id:
                continue
            told.add(chat_id)
            messages.append(
                OutgoingMessage(
                    chat_id=chat_id,
                    text=text,
                    # Per day: a member who comes back and drops out again is news again.
                    dedupe_key=f"unreachable:{member.id}:{chat_id}:{day}",
                    source=f"unreachable:{member.id}",
                    priority=1,
                )
            )
    await enqueue(session, messages)


def _unreachable_text(name: str, path: str, role: str, reason: str) -> str:
    post = f"{path} {'负责人' if role == 'lead' else '信息员'}"
    return (
        f"⚠️ {html.escape(name)}（{html.escape(post)}）无法接收机器人的消息"
        f"（{html.escape(reason)}）。请电话联系，请其在 Telegram 中打开机器人并按“开始”。"
    )


async def _member_for(session: AsyncSession, member_id: int | None, chat_id: int) -> Member | None:
    if member_id is not None:
        return await session.get(Member, member_id)
    if chat_id > 0:
        return await session.scalar(select(Member).where(Member.telegram_id == chat_id))
    return None


def _clip(text: str | None, length: int = ERROR_LENGTH) -> str | None:
    return None if text is None else text[:length]
