"""Alerts (特殊情况立即上报): a member's ``/alert`` or a saved report that meets an alert rule
goes at once up the chain (the building, grid and zone leads above and their officers),
ahead of any broadcast, with an acknowledge button. The first acknowledgement is told to
the others; an alert nobody acknowledges in time goes on to the command centre, once.

Every step writes its messages in the transaction that records it, with dedupe keys. Here:
the table and raising alerts; ``models.alert_followup`` acknowledges and escalates them and
purges the old, ``models.alert_views`` reads them.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    select,
    update,
)
from sqlalchemy import Text as LongText
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from models.audit import record
from models.base import Base, utcnow
from models.chain import ancestors_above, holders_at, private_addresses
from models.form_parse import form_from_stored
from models.forms import SEVERITIES, AlertMatch, Form
from models.messages import Action, ActionKind, AlertBody
from models.org import Member, Node, Post
from models.outbox.table import URGENT_PRIORITY, OutgoingMessage, enqueue
from models.posts import Recipient
from models.rounds import HouseholdReport, ReportForm, ReportRound

# Alerts go ahead of everything else in the outbox, county-wide notices included, and
# leave it in quiet hours too.
ALERT_PRIORITY = URGENT_PRIORITY
TEXT_LENGTH = 4000
NAME_LENGTH = 200
LARGEST_ID = 2**31 - 1


class AlertOrigin(StrEnum):
    # A member's own /alert: text, or a photo or voice message sent on as it is.
    member = "member"
    # A saved household report that met an alert rule of the form.
    report = "report"


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        CheckConstraint("origin IN ('member', 'report')", name="origin"),
        # One alert per report and rule field: saving or correcting a report again adds none.
        UniqueConstraint("report_id", "rule_field", name="uq_alerts_report_field"),
        Index("ix_alerts_created_at", "created_at"),
        Index("ix_alerts_node_id", "node_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    origin: Mapped[str] = mapped_column(String(16))
    # The sender's post's node, or the reported household's unit.
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"))
    raised_by_member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL")
    )
    # The sender's post at ``node_id`` (lead or officer); None for a report.
    raised_by_role: Mapped[str | None] = mapped_column(String(16))
    # --- a member's alert: plain text as typed, or a message sent on as it is ---
    text: Mapped[str | None] = mapped_column(LongText)
    media: Mapped[str | None] = mapped_column(String(16))
    from_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    # --- a report's alert: the rule met and the household's answer ---
    report_id: Mapped[int | None] = mapped_column(Integer)
    household_id: Mapped[int | None] = mapped_column(
        ForeignKey("households.id", ondelete="SET NULL")
    )
    rule_field: Mapped[str | None] = mapped_column(String(64))
    rule_operator: Mapped[str | None] = mapped_column(String(16))
    rule_value: Mapped[Any] = mapped_column(JSON, nullable=True)
    severity: Mapped[str | None] = mapped_column(String(16))
    answer: Mapped[Any] = mapped_column(JSON, nullable=True)
    # The field and the answer as the report's form words them: {locale: [field, answer]}.
    labels: Mapped[Any] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column()
    acknowledged_by_telegram_id: Mapped[int | None] = mapped_column(BigInteger)
    acknowledged_by_name: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    # When it went on to the command centre; set once.
    escalated_at: Mapped[datetime | None] = mapped_column()


def source_of(alert_id: int) -> str:
    return f"alert:{alert_id}"


def acknowledge_action(alert_id: int) -> tuple[Action, ...]:
    return (Action(ActionKind.acknowledge_alert, alert_id),)


# --- raising --------------------------------------------------------------------------


class AlertMedia(StrEnum):
    photo = "photo"
    voice = "voice"
    video = "video"
    document = "document"


@dataclass(frozen=True)
class MemberAlert:
    """What a member sends with ``/alert``: text, or a message of theirs to send on (its
    caption, if any, in ``text``)."""

    text: str | None
    media: AlertMedia | None = None
    from_chat_id: int | None = None
    message_id: int | None = None


@dataclass(frozen=True)
class Raised:
    alert_id: int
    # How many people it went to; 0 means straight to the command centre.
    recipients: int
    to_command_centre: bool


class AlertRefused(Exception):
    """The member does not hold the post the alert would come from."""


async def raise_member_alert(
    session: AsyncSession,
    *,
    member_id: int,
    post_id: int,
    alert: MemberAlert,
    command_centre: Sequence[int],
) -> Raised:
    """Records the member's alert from the node of ``post_id`` (which the member must hold)
    and sends it up the chain in the same transaction; straight to the command centre when
    nobody stands above. Commits."""
    post = await session.get(Post, post_id)
    if post is None or post.holder_id != member_id:
        raise AlertRefused(post_id)
    node = await session.get(Node, post.node_id)
    if node is None:
        raise AlertRefused(post_id)
    row = Alert(
        origin=AlertOrigin.member,
        node_id=node.id,
        raised_by_member_id=member_id,
        raised_by_role=post.role,
        text=alert.text[:TEXT_LENGTH] if alert.text else None,
        media=alert.media.value if alert.media else None,
        from_chat_id=alert.from_chat_id,
        message_id=alert.message_id,
    )
    session.add(row)
    await session.flush()
    recipients = await holders_at(session, ancestors_above(node), besides=member_id)
    raised = await _send_up(session, row.id, recipients, command_centre)
    member = await session.get(Member, member_id)
    record(
        session,
        "alert.raised",
        member.telegram_id if member else None,
        alert_id=row.id,
        node_id=node.id,
        recipients=raised.recipients,
    )
    await session.commit()
    return raised


# Most severe first, as the form lists them.
SEVERITY_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}


async def raise_report_alerts(
    session: AsyncSession,
    *,
    report_id: int,
    household_id: int,
    unit_node_id: int,
    reporter_member_id: int | None,
    matches: list[AlertMatch],
    command_centre: Sequence[int],
) -> list[int]:
    """An alert for each field of the report that met a rule (the most severe rule of a
    field), sent up the chain above the unit in the caller's transaction (no commit).
    Fields already alerted for this report add nothing: saving a correction repeats no
    alert. Returns the ids of the alerts raised now."""
    unit = await session.get(Node, unit_node_id)
    if unit is None or not matches:
        return []
    by_field: dict[str, AlertMatch] = {}
    for match in sorted(matches, key=lambda m: SEVERITY_RANK.get(m.severity, len(SEVERITY_RANK))):
        by_field.setdefault(match.field, match)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    recipients = await holders_at(session, ancestors_above(unit), besides=reporter_member_id)
    reporter = await session.get(Member, reporter_member_id) if reporter_member_id else None
    form = await _form_of_report(session, report_id)
    raised: list[int] = []
    for match in by_field.values():
        alert_id = await session.scalar(
            insert(Alert)
            .values(
                origin=AlertOrigin.report.value,
                node_id=unit.id,
                raised_by_member_id=reporter_member_id,
                report_id=report_id,
                household_id=household_id,
                rule_field=match.field[:64],
                rule_operator=match.operator[:16],
                rule_value=_json_safe(match.value),
                severity=match.severity[:16],
                answer=_json_safe(match.answer),
                labels=(form.answer_labels(match.field, match.answer) or None) if form else None,
                created_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["report_id", "rule_field"])
            .returning(Alert.id)
        )
        if alert_id is None:
            continue
        sent = await _send_up(session, alert_id, recipients, command_centre)
        record(
            session,
            "alert.raised",
            reporter.telegram_id if reporter else None,
            alert_id=alert_id,
            report_id=report_id,
            household_id=household_id,
            recipients=sent.recipients,
        )
        raised.append(alert_id)
    return raised


async def _form_of_report(session: AsyncSession, report_id: int) -> Form | None:
    """The form the report was given under, to word its field and answer for the leads."""
    definition = await session.scalar(
        select(ReportForm.definition)
        .join(ReportRound, ReportRound.form_version == ReportForm.version)
        .join(HouseholdReport, HouseholdReport.round_id == ReportRound.id)
        .where(HouseholdReport.id == report_id)
    )
    return form_from_stored(definition) if definition is not None else None


def _json_safe(value: object) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_safe(item) for item in value]
    return str(value)


async def _send_up(
    session: AsyncSession,
    alert_id: int,
    recipients: list[Recipient],
    command_centre: Sequence[int],
) -> Raised:
    """The alert to ``recipients``; to the command centre at once when there is nobody."""
    private = [recipient for recipient in recipients if recipient.telegram_id > 0]
    if private:
        await enqueue(
            session,
            [_alert_message(alert_id, recipient) for recipient in private],
        )
        return Raised(alert_id, len(private), to_command_centre=False)
    # Nobody stands above: the command centre gets it as the leads would have, at once.
    await to_command_centre(session, alert_id, command_centre, late=False)
    return Raised(alert_id, 0, to_command_centre=True)


def _alert_message(alert_id: int, recipient: Recipient) -> OutgoingMessage:
    return OutgoingMessage(
        chat_id=recipient.telegram_id,
        member_id=recipient.member_id,
        content=AlertBody(alert_id),
        actions=acknowledge_action(alert_id),
        dedupe_key=f"{source_of(alert_id)}:to:{recipient.telegram_id}",
        source=source_of(alert_id),
        priority=ALERT_PRIORITY,
        # A reader who cannot be reached is replaced by the command centre, under the same
        # keys as an escalation: each address gets the alert once either way.
        fallback_key=_command_centre_key(alert_id),
    )


def _command_centre_key(alert_id: int) -> str:
    return f"{source_of(alert_id)}:cc"


async def to_command_centre(
    session: AsyncSession, alert_id: int, command_centre: Sequence[int], *, late: bool
) -> int:
    """The alert to the command centre (``late``: nobody above took it in time), once per
    address, and marked so that no sweep sends it again."""
    messages = [
        OutgoingMessage(
            chat_id=recipient.telegram_id,
            content=AlertBody(alert_id, escalated=late),
            actions=acknowledge_action(alert_id),
            dedupe_key=f"{_command_centre_key(alert_id)}:{recipient.telegram_id}",
            source=source_of(alert_id),
            priority=ALERT_PRIORITY,
        )
        for recipient in private_addresses(command_centre)
    ]
    await session.execute(
        update(Alert)
        .where(Alert.id == alert_id, Alert.escalated_at.is_(None))
        .values(escalated_at=utcnow()),
        execution_options={"synchronize_session": False},
    )
    return await enqueue(session, messages)
