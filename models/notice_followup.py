"""After a notice went out: remind those who have not acknowledged, then tell whoever stands
above them (the command centre above a zone, or where the level above is vacant). Each step
writes its messages in the transaction that records it, with dedupe keys, so a second run
adds nothing."""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.access import Scope
from models.audit import record
from models.base import utcnow
from models.messages import Action, ActionKind, Text, TextList
from models.notices import Notice, NoticeRecipient, NoticeStatus, source_of
from models.org import Member, Node, Post
from models.outbox.table import OutboxMessage, OutgoingMessage, enqueue

# Names listed in one escalation message; the rest are counted.
ESCALATION_NAMES = 50


@dataclass(frozen=True)
class Straggler:
    """A recipient who has not acknowledged yet."""

    member_id: int
    telegram_id: int
    locale: str | None
    name: str
    node_id: int
    path: str
    role: str
    level: str
    parent_id: int | None
    # The superior reading the list may call them.
    phone: str


async def notices_to_remind(session: AsyncSession, after: timedelta) -> list[Notice]:
    return list(
        await session.scalars(
            select(Notice).where(
                Notice.status == NoticeStatus.dispatched,
                Notice.wants_ack.is_(True),
                Notice.reminded_at.is_(None),
                Notice.dispatched_at <= utcnow() - after,
            )
        )
    )


async def notices_to_escalate(session: AsyncSession, after: timedelta) -> list[Notice]:
    return list(
        await session.scalars(
            select(Notice).where(
                Notice.status == NoticeStatus.dispatched,
                Notice.wants_ack.is_(True),
                Notice.escalated_at.is_(None),
                Notice.reminded_at <= utcnow() - after,
            )
        )
    )


async def stragglers(session: AsyncSession, notice_id: int) -> list[Straggler]:
    rows = await session.execute(
        select(
            Member.id,
            Member.telegram_id,
            Member.locale,
            Member.name,
            Node.id,
            Node.path,
            NoticeRecipient.role,
            Node.level,
            Node.parent_id,
            func.coalesce(Member.phone, ""),
        )
        .select_from(NoticeRecipient)
        .join(Member, Member.id == NoticeRecipient.member_id)
        .join(Node, Node.id == NoticeRecipient.node_id)
        .where(NoticeRecipient.notice_id == notice_id, NoticeRecipient.acked_at.is_(None))
        .order_by(Node.path)
    )
    return [Straggler(*row[:9], phone=row[9]) for row in rows]


async def holders_at(
    session: AsyncSession, node_ids: set[int]
) -> dict[int, list[tuple[int, int | None]]]:
    """(telegram id, member id) of the lead and officer of each node."""
    found: dict[int, list[tuple[int, int | None]]] = {node_id: [] for node_id in node_ids}
    if not node_ids:
        return found
    rows = await session.execute(
        select(Post.node_id, Member.telegram_id, Member.id)
        .join(Member, Member.id == Post.holder_id)
        .where(Post.node_id.in_(node_ids))
        .order_by(Post.role)
    )
    for node_id, telegram_id, member_id in rows:
        found[node_id].append((telegram_id, member_id))
    return found


async def remind_and_escalate(
    session: AsyncSession,
    remind_after: timedelta,
    escalate_after: timedelta,
    command_centre: Sequence[int],
) -> int:
    """Every notice due a reminder or an escalation gets it, each in its own transaction.
    Returns how many steps were taken."""
    steps = 0
    for notice in await notices_to_remind(session, remind_after):
        await remind(session, notice)
        steps += 1
    for notice in await notices_to_escalate(session, escalate_after):
        await escalate(session, notice, command_centre)
        steps += 1
    return steps


async def remind(session: AsyncSession, notice: Notice) -> None:
    """Each recipient who has not acknowledged is reminded once. Commits."""
    source = source_of(notice.id)
    messages = [
        OutgoingMessage(
            chat_id=straggler.telegram_id,
            member_id=straggler.member_id,
            content=Text("notice.reminder", {"id": notice.id}),
            actions=(Action(ActionKind.acknowledge_notice, notice.id),),
            dedupe_key=f"{source}:remind:{straggler.member_id}",
            source=f"{source}:remind",
        )
        for straggler in await stragglers(session, notice.id)
    ]
    await enqueue(session, messages)
    notice.reminded_at = utcnow()
    await session.commit()


async def escalate(session: AsyncSession, notice: Notice, command_centre: Sequence[int]) -> None:
    """Whoever stands above those still missing gets their names. Commits."""
    late = await stragglers(session, notice.id)
    parents = {straggler.parent_id for straggler in late if straggler.parent_id is not None}
    superiors = await holders_at(session, parents)
    by_superior: dict[tuple[int, int | None], list[Text]] = defaultdict(list)
    for straggler in late:
        above = superiors.get(straggler.parent_id, []) if straggler.parent_id else []
        if not above:
            above = [(address, None) for address in command_centre]
        for superior in above:
            by_superior[superior].append(
                Text(
                    "notice.missing_row_phone",
                    {"name": straggler.name, "phone": straggler.phone, "path": straggler.path},
                )
            )
    source = source_of(notice.id)
    messages = [
        OutgoingMessage(
            chat_id=telegram_id,
            member_id=member_id,
            content=Text(
                "notice.escalation",
                {
                    "id": notice.id,
                    "count": len(names),
                    "names": TextList(tuple(names[:ESCALATION_NAMES])),
                },
            ),
            actions=(Action(ActionKind.nudge_notice, notice.id),),
            dedupe_key=f"{source}:escalate:{telegram_id}",
            source=f"{source}:escalate",
        )
        for (telegram_id, member_id), names in by_superior.items()
    ]
    await enqueue(session, messages)
    notice.escalated_at = utcnow()
    await session.commit()


class Nudge(StrEnum):
    sent = "sent"
    # Nobody the reader may see is missing.
    nobody = "nobody"
    already = "already"


async def nudge(
    session: AsyncSession, notice_id: int, telegram_id: int, scope: Scope
) -> tuple[Nudge, int]:
    """The reader reminds, once per notice, those inside their scope who have not
    acknowledged it; the scope is checked again here, not trusted from the button. Returns
    the outcome and how many were reminded. Commits."""
    source = f"{source_of(notice_id)}:nudge:{telegram_id}"
    if await session.scalar(select(exists().where(OutboxMessage.source == source))):
        return Nudge.already, 0
    late = await stragglers(session, notice_id)
    if not scope.is_admin:
        nodes = {
            node.id: node
            for node in await session.scalars(
                select(Node).where(Node.id.in_({s.node_id for s in late}))
            )
        }
        late = [s for s in late if s.node_id in nodes and scope.sees(nodes[s.node_id])]
    if not late:
        return Nudge.nobody, 0
    who = await session.scalar(select(Member.name).where(Member.telegram_id == telegram_id))
    await enqueue(
        session,
        [
            OutgoingMessage(
                chat_id=straggler.telegram_id,
                member_id=straggler.member_id,
                content=Text("notice.nudge", {"id": notice_id, "who": who or ""}),
                actions=(Action(ActionKind.acknowledge_notice, notice_id),),
                dedupe_key=f"{source}:{straggler.member_id}",
                source=source,
            )
            for straggler in late
        ],
    )
    record(session, "notice.nudged", telegram_id, notice_id=notice_id, count=len(late))
    await session.commit()
    return Nudge.sent, len(late)
