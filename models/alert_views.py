"""What an alert shows: its content as a delivery adapter renders it, and counts of the
open ones."""

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.alerts import Alert, AlertMedia, AlertOrigin
from models.messages import PostRef
from models.org import Household, Member, Node, under


@dataclass(frozen=True)
class AlertContent:
    """What a delivery adapter needs to show an alert."""

    alert_id: int
    origin: AlertOrigin
    # The node it comes from: the sender's post's, or the reported household's unit.
    path: str
    sender_name: str | None
    # The sender's post (a member's alert).
    sender_post: PostRef | None
    text: str | None
    media: AlertMedia | None
    from_chat_id: int | None
    message_id: int | None
    # A report's alert: the household's room, the field and the answer that met the rule.
    room: str | None = None
    field: str | None = None
    answer: str | None = None
    severity: str | None = None
    # The field and the answer as the form words them, per locale.
    labels: Mapping[str, tuple[str, str]] | None = None


async def alert_contents(session: AsyncSession, alert_ids: set[int]) -> dict[int, AlertContent]:
    rows = await session.execute(
        select(Alert, Node.level, Node.path, Member.name, Household.room)
        .join(Node, Node.id == Alert.node_id)
        .outerjoin(Member, Member.id == Alert.raised_by_member_id)
        .outerjoin(Household, Household.id == Alert.household_id)
        .where(Alert.id.in_(alert_ids))
    )
    contents: dict[int, AlertContent] = {}
    for alert, level, path, sender_name, room in rows:
        contents[alert.id] = AlertContent(
            alert_id=alert.id,
            origin=AlertOrigin(alert.origin),
            path=path,
            sender_name=sender_name,
            sender_post=PostRef(level, alert.raised_by_role, path)
            if alert.raised_by_role
            else None,
            text=alert.text,
            media=AlertMedia(alert.media) if alert.media else None,
            from_chat_id=alert.from_chat_id,
            message_id=alert.message_id,
            room=room,
            field=alert.rule_field,
            answer=None if alert.answer is None else answer_text(alert.answer),
            severity=alert.severity,
            labels=_labels(alert.labels),
        )
    return contents


def _labels(stored: object) -> dict[str, tuple[str, str]] | None:
    if not isinstance(stored, Mapping):
        return None
    return {
        str(locale): (str(pair[0]), str(pair[1]))
        for locale, pair in stored.items()
        if isinstance(pair, list | tuple) and len(pair) == 2
    }


def answer_text(answer: object) -> str:
    """A household's answer as one line: a multiple choice joined, anything else as is."""
    if isinstance(answer, list):
        return ", ".join(answer_text(item) for item in answer)
    if isinstance(answer, Mapping):
        return ", ".join(f"{key}: {answer_text(value)}" for key, value in answer.items())
    return str(answer)


async def open_alert_count(session: AsyncSession, node: Node | None) -> int:
    """Alerts not yet acknowledged in the subtree of ``node`` (the county for None)."""
    count = await session.scalar(
        select(func.count())
        .select_from(Alert)
        .join(Node, Node.id == Alert.node_id)
        .where(Alert.acknowledged_at.is_(None), under(node))
    )
    return int(count or 0)
