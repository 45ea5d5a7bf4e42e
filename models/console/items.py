"""What is open under a node: alerts and needs by age, and the latest notices'
delivery and acknowledgement."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import String, and_, cast, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.alerts import Alert
from models.base import as_utc, utcnow
from models.console.common import age_bucket, child_level
from models.needs import UNSETTLED, Need, NeedLimits
from models.notices import Notice, NoticeRecipient
from models.org import Node, under
from models.outbox.table import OutboxMessage, OutboxStatus

# --- alerts and needs -----------------------------------------------------------------


@dataclass(frozen=True)
class OpenItem:
    kind: str  # "alert" or "need"
    item_id: int
    path: str
    # The need's kind, or the alert's severity / "member".
    label: str
    since: datetime
    bucket: str
    overdue: bool
    taken_by: str | None


@dataclass(frozen=True)
class OpenItems:
    items: list[OpenItem]
    # (kind, bucket) → count
    buckets: dict[tuple[str, str], int]


async def open_items(
    session: AsyncSession,
    node: Node | None,
    alert_escalate_after: timedelta,
    need_limits: NeedLimits,
    now: datetime | None = None,
    limit: int = 40,
) -> OpenItems:
    """Alerts nobody acknowledged yet and the day's acknowledged ones, and needs not yet
    confirmed, under the node: overdue first, then oldest."""
    moment = now or utcnow()
    alert_rows = await session.execute(
        select(
            Alert.id,
            Node.path,
            Alert.severity,
            Alert.origin,
            Alert.created_at,
            Alert.acknowledged_by_name,
            Alert.acknowledged_at,
        )
        .join(Node, Node.id == Alert.node_id)
        .where(
            under(node),
            or_(
                Alert.acknowledged_at.is_(None),
                Alert.created_at >= moment - timedelta(hours=24),
            ),
        )
    )
    items: list[OpenItem] = []
    for alert_id, path, severity, origin, created, taker, acknowledged in alert_rows:
        since = as_utc(created)
        items.append(
            OpenItem(
                "alert",
                alert_id,
                path,
                severity or origin,
                since,
                age_bucket(moment - since),
                acknowledged is None and moment - since > alert_escalate_after,
                taker,
            )
        )
    need_rows = await session.execute(
        select(Need.id, Node.path, Need.kind, Need.opened_at, Need.taken_by_name, Need.status)
        .join(Node, Node.id == Need.unit_node_id)
        .where(under(node), Need.status.in_([status.value for status in UNSETTLED]))
    )
    for need_id, path, kind, opened, taker, status in need_rows:
        since = as_utc(opened)
        items.append(
            OpenItem(
                "need",
                need_id,
                path,
                kind,
                since,
                age_bucket(moment - since),
                status != "resolved" and moment > need_limits.due_at(kind, since),
                taker,
            )
        )
    buckets: dict[tuple[str, str], int] = {}
    for item in items:
        buckets[(item.kind, item.bucket)] = buckets.get((item.kind, item.bucket), 0) + 1
    items.sort(key=lambda item: (not item.overdue, item.since))
    return OpenItems(items[:limit], buckets)


# --- notices --------------------------------------------------------------------------


@dataclass(frozen=True)
class NoticeRow:
    notice_id: int
    preview: str
    # The child node's name, or "" for the viewed node's own posts.
    node_name: str
    sent: int
    delivered: int
    acknowledged: int


async def notices(session: AsyncSession, node: Node | None, recent: int = 3) -> list[NoticeRow]:
    """For the latest ``recent`` notices reaching under the node: recipients, delivered
    (sent by the outbox) and acknowledged, per child node."""
    level = child_level(node)
    latest = (
        select(NoticeRecipient.notice_id)
        .join(Node, Node.id == NoticeRecipient.node_id)
        .where(under(node))
        .group_by(NoticeRecipient.notice_id)
        .order_by(NoticeRecipient.notice_id.desc())
        .limit(recent)
        .subquery()
    )
    child = Node.__table__.alias("child")
    child_column = getattr(Node, level.ancestor_column) if level else Node.id
    dedupe = (
        literal("notice:")
        + cast(NoticeRecipient.notice_id, String)
        + literal(":member:")
        + cast(NoticeRecipient.member_id, String)
    )
    rows = await session.execute(
        select(
            NoticeRecipient.notice_id,
            Notice.text,
            child.c.name,
            func.count(NoticeRecipient.id),
            func.count(OutboxMessage.id),
            func.count(NoticeRecipient.acked_at),
        )
        .join(Notice, Notice.id == NoticeRecipient.notice_id)
        .join(Node, Node.id == NoticeRecipient.node_id)
        .outerjoin(child, child.c.id == child_column)
        .outerjoin(
            OutboxMessage,
            and_(
                OutboxMessage.dedupe_key == dedupe,
                OutboxMessage.status == OutboxStatus.sent.value,
            ),
        )
        .where(NoticeRecipient.notice_id.in_(select(latest.c.notice_id)), under(node))
        .group_by(NoticeRecipient.notice_id, Notice.text, child.c.name)
    )
    found = [
        NoticeRow(notice_id, (text or "")[:60], name or "", sent, delivered, acked)
        for notice_id, text, name, sent, delivered, acked in rows
    ]
    return sorted(found, key=lambda row: (-row.notice_id, row.node_name))
