"""What the command centre's web console shows, read set-based: one query per panel
(progress, late units, alerts and needs, notices, post coverage, trend), from a node down
(the county for None), never a query per node.

Access is the caller's business (``models.access.scope_of`` on every request); these
functions read what lies under the node they are given.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, String, and_, case, cast, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.alerts import Alert
from models.base import as_utc, utcnow
from models.chase import ChaseStep
from models.forms import Form
from models.needs import UNSETTLED, Need, NeedLimits
from models.notices import Notice, NoticeRecipient
from models.org import LEVELS, Household, Level, Member, Node, Post, Role, under
from models.outbox.table import OutboxMessage, OutboxStatus
from models.reports import room_order
from models.rounds import HouseholdReport, ReportRound, ReportStatus
from models.system import AuditEntry

# Colour bands of a share of households reported (PRODUCT: ≥ 90 % green, ≥ 60 % amber).
GREEN_FROM = 0.9
AMBER_FROM = 0.6
# Age buckets of open alerts and needs: upper bounds in hours, the last one open-ended.
AGE_BUCKETS: tuple[tuple[str, float | None], ...] = (
    ("lt1h", 1),
    ("1to4h", 4),
    ("4to24h", 24),
    ("older", None),
)


def band(share: float | None) -> str:
    if share is None:
        return "none"
    if share >= GREEN_FROM:
        return "green"
    return "amber" if share >= AMBER_FROM else "red"


def age_bucket(age: timedelta) -> str:
    hours = age.total_seconds() / 3600
    for name, upper in AGE_BUCKETS:
        if upper is None or hours < upper:
            return name
    return AGE_BUCKETS[-1][0]


def child_level(node: Node | None) -> Level | None:
    """The level of the node's children; None below a unit (its households)."""
    if node is None:
        return Level.zone
    depth = Level(node.level).depth
    return LEVELS[depth + 1] if depth + 1 < len(LEVELS) else None


def _report_within(node: Node | None) -> ColumnElement[bool]:
    if node is None:
        return literal(True)
    column: ColumnElement[int] = getattr(HouseholdReport, Level(node.level).ancestor_column)
    return column == node.id


async def breadcrumbs(session: AsyncSession, node: Node | None) -> list[Node]:
    """The node's ancestors from the zone down, the node itself last."""
    if node is None:
        return []
    ids = [getattr(node, level.ancestor_column) for level in LEVELS]
    found = {
        ancestor.id: ancestor
        for ancestor in await session.scalars(
            select(Node).where(Node.id.in_([i for i in ids if i is not None]))
        )
    }
    return [found[i] for i in ids if i is not None and i in found]


async def latest_round(session: AsyncSession, now: datetime | None = None) -> ReportRound | None:
    """The round open now, else the last one opened."""
    moment = now or utcnow()
    return await session.scalar(
        select(ReportRound)
        .where(ReportRound.opens_at <= moment)
        .order_by(ReportRound.opens_at.desc())
        .limit(1)
    )


# --- progress -------------------------------------------------------------------------


@dataclass(frozen=True)
class ChildProgress:
    node_id: int
    name: str
    level: str
    expected: int
    reported: int
    on_time: int

    @property
    def share(self) -> float | None:
        return self.reported / self.expected if self.expected else None

    @property
    def on_time_share(self) -> float | None:
        return self.on_time / self.reported if self.reported else None

    @property
    def band(self) -> str:
        return band(self.share)


def _counts(report_round: ReportRound) -> tuple[Any, Any, Any]:
    reported = HouseholdReport.status != ReportStatus.missing.value
    on_time = and_(reported, HouseholdReport.reported_at <= report_round.due_at)
    return (
        func.count(HouseholdReport.id),
        func.coalesce(func.sum(case((reported, 1), else_=0)), 0),
        func.coalesce(func.sum(case((on_time, 1), else_=0)), 0),
    )


async def progress(
    session: AsyncSession, report_round: ReportRound, node: Node | None
) -> list[ChildProgress]:
    """Reported / expected households per child node of ``node`` in the round ("nobody
    home" counts as reported; the expected households are those frozen at the round's
    opening), worst share first. Empty below a unit: see ``households``."""
    level = child_level(node)
    if level is None:
        return []
    column: ColumnElement[int] = getattr(HouseholdReport, level.ancestor_column)
    totals = (
        select(
            column.label("child_id"),
            *(
                c.label(n)
                for c, n in zip(
                    _counts(report_round), ("expected", "reported", "on_time"), strict=True
                )
            ),
        )
        .where(HouseholdReport.round_id == report_round.id, _report_within(node))
        .group_by(column)
        .subquery()
    )
    rows = await session.execute(
        select(
            Node.id,
            Node.name,
            Node.level,
            totals.c.expected,
            totals.c.reported,
            totals.c.on_time,
        ).join(totals, totals.c.child_id == Node.id)
    )
    children = [
        ChildProgress(node_id, name, node_level, int(expected), int(reported), int(on_time))
        for node_id, name, node_level, expected, reported, on_time in rows
    ]
    return sorted(
        children, key=lambda child: (child.share if child.share is not None else 2, child.name)
    )


@dataclass(frozen=True)
class Totals:
    expected: int
    reported: int
    on_time: int

    @property
    def share(self) -> float | None:
        return self.reported / self.expected if self.expected else None

    @property
    def on_time_share(self) -> float | None:
        return self.on_time / self.reported if self.reported else None


def total_of(children: Sequence[ChildProgress]) -> Totals:
    return Totals(
        sum(child.expected for child in children),
        sum(child.reported for child in children),
        sum(child.on_time for child in children),
    )


@dataclass(frozen=True)
class HouseholdRow:
    household_id: int
    room: str
    status: str
    alert: bool
    reported_at: datetime | None
    # (field label, answer label) per answer, in the reader's language; empty when hidden.
    answers: list[tuple[str, str]] = field(default_factory=list)


async def households(
    session: AsyncSession,
    report_round: ReportRound,
    unit: Node,
    form: Form | None,
    locale: str,
) -> list[HouseholdRow]:
    """A unit's households in the round, with their answers in ``locale`` when ``form``
    is given (the caller passes it only to a viewer chat would show them to)."""
    rows = await session.execute(
        select(
            Household.id,
            Household.room,
            HouseholdReport.status,
            HouseholdReport.alert,
            HouseholdReport.reported_at,
            HouseholdReport.answers,
        )
        .join(HouseholdReport, HouseholdReport.household_id == Household.id)
        .where(HouseholdReport.round_id == report_round.id, HouseholdReport.unit_id == unit.id)
    )
    found = []
    for household_id, room, status, alert, reported_at, answers in rows:
        shown: list[tuple[str, str]] = []
        if form is not None and answers:
            for field_id, answer in answers.items():
                labels = form.answer_labels(field_id, answer).get(locale)
                if labels is not None and answer not in (None, [], ""):
                    shown.append(labels)
        found.append(
            HouseholdRow(
                household_id,
                room,
                status,
                bool(alert),
                as_utc(reported_at) if reported_at else None,
                shown,
            )
        )
    return sorted(found, key=lambda row: room_order(row.room))


# --- late units -----------------------------------------------------------------------


@dataclass(frozen=True)
class PostHolder:
    role: str
    # "held", "vacant" or "unreachable".
    state: str
    name: str | None


@dataclass(frozen=True)
class LateUnitRow:
    unit_id: int
    path: str
    missing: int
    lead: PostHolder
    officer: PostHolder
    # Ladder steps fired for this unit or a node above it in the round, by step name.
    steps: list[str]


async def late_units(
    session: AsyncSession, report_round: ReportRound, node: Node | None, limit: int = 40
) -> tuple[list[LateUnitRow], int]:
    """The units with households still missing, most missing first, with their posts'
    holders and the ladder steps fired about them; and how many late units there are."""
    missing = (
        select(HouseholdReport.unit_id.label("unit_id"), func.count().label("missing"))
        .where(
            HouseholdReport.round_id == report_round.id,
            HouseholdReport.status == ReportStatus.missing.value,
            _report_within(node),
        )
        .group_by(HouseholdReport.unit_id)
        .subquery()
    )
    top = (
        select(
            missing.c.unit_id,
            missing.c.missing,
            # Every late unit's count in the same pass: a window over the grouped rows.
            func.count().over().label("late_units"),
        )
        .order_by(missing.c.missing.desc(), missing.c.unit_id)
        .limit(limit)
        .subquery()
    )
    rows = (
        await session.execute(
            select(
                Node.id,
                Node.path,
                top.c.missing,
                top.c.late_units,
                Node.zone_id,
                Node.grid_id,
                Node.building_id,
                Post.role,
                Member.name,
                Member.reachable,
            )
            .join(top, top.c.unit_id == Node.id)
            .outerjoin(Post, Post.node_id == Node.id)
            .outerjoin(Member, Member.id == Post.holder_id)
        )
    ).all()
    ancestors: set[int] = set()
    units: dict[int, dict[str, Any]] = {}
    count = int(rows[0][3]) if rows else 0
    for unit_id, path, count_missing, _, zone_id, grid_id, building_id, role, name, reach in rows:
        entry = units.setdefault(
            unit_id,
            {
                "path": path,
                "missing": int(count_missing),
                "above": (zone_id, grid_id, building_id),
                "posts": {},
            },
        )
        ancestors.update(i for i in (zone_id, grid_id, building_id, unit_id) if i is not None)
        if role is not None:
            state = "vacant" if name is None else ("held" if reach else "unreachable")
            entry["posts"][role] = PostHolder(role, state, name)
    fired: dict[int, list[str]] = {}
    if ancestors:
        for node_id, step in await session.execute(
            select(ChaseStep.node_id, ChaseStep.step)
            .where(ChaseStep.round_id == report_round.id, ChaseStep.node_id.in_(sorted(ancestors)))
            .order_by(ChaseStep.fired_at)
        ):
            fired.setdefault(node_id, []).append(step)
    late = []
    for unit_id, entry in units.items():
        steps = [
            step for ancestor in (*entry["above"], unit_id) for step in fired.get(ancestor, [])
        ]
        late.append(
            LateUnitRow(
                unit_id,
                entry["path"],
                entry["missing"],
                entry["posts"].get(Role.lead.value, PostHolder(Role.lead.value, "vacant", None)),
                entry["posts"].get(
                    Role.officer.value, PostHolder(Role.officer.value, "vacant", None)
                ),
                sorted(set(steps), key=_step_minutes),
            )
        )
    late.sort(key=lambda row: (-row.missing, row.path))
    return late, count


def _step_minutes(name: str) -> int:
    """A ladder step's minutes from the due time, read off its name ("building+30")."""
    for index, character in enumerate(name):
        if character in "+-":
            tail = name[index:]
            return int(tail) if tail[1:].isdigit() else 0
    return 0


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


# --- post coverage --------------------------------------------------------------------


@dataclass(frozen=True)
class CoverageRow:
    node_id: int | None
    name: str
    posts: int
    vacant: int
    unreachable: int
    silent: int


async def coverage(
    session: AsyncSession, node: Node | None, silent_days: int, now: datetime | None = None
) -> list[CoverageRow]:
    """Per child node: the posts at or below it, how many are vacant, held by someone
    unreachable, or held by someone with nothing in the audit log for ``silent_days``."""
    moment = now or utcnow()
    level = child_level(node)
    child_column = getattr(Node, level.ancestor_column) if level else Node.id
    child = Node.__table__.alias("child")
    active = (
        select(Member.id)
        .join(AuditEntry, AuditEntry.actor_telegram_id == Member.telegram_id)
        .where(AuditEntry.at >= moment - timedelta(days=silent_days))
        .distinct()
    )
    held = Post.holder_id.is_not(None)
    rows = await session.execute(
        select(
            child.c.id,
            child.c.name,
            func.count(Post.id),
            func.sum(case((held, 0), else_=1)),
            func.sum(case((and_(held, Member.reachable.is_(False)), 1), else_=0)),
            func.sum(
                case(
                    (and_(held, Member.reachable.is_(True), Member.id.not_in(active)), 1),
                    else_=0,
                )
            ),
        )
        .select_from(Post)
        .join(Node, Node.id == Post.node_id)
        .outerjoin(Member, Member.id == Post.holder_id)
        .outerjoin(child, child.c.id == child_column)
        .where(under(node))
        .group_by(child.c.id, child.c.name)
    )
    found = [
        CoverageRow(
            node_id, name or "", int(posts), int(vacant or 0), int(unreach or 0), int(silent or 0)
        )
        for node_id, name, posts, vacant, unreach, silent in rows
    ]
    return sorted(found, key=lambda row: (-(row.vacant + row.unreachable), row.name))


# --- trend ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TrendPoint:
    round_id: int
    day: str
    expected: int
    reported: int
    on_time: int

    @property
    def completeness(self) -> float | None:
        return self.reported / self.expected if self.expected else None

    @property
    def timeliness(self) -> float | None:
        return self.on_time / self.expected if self.expected else None


async def recent_rounds(session: AsyncSession, count: int = 14) -> list[ReportRound]:
    found = await session.scalars(
        select(ReportRound).order_by(ReportRound.date.desc()).limit(count)
    )
    return sorted(found, key=lambda report_round: report_round.date)


async def trend(
    session: AsyncSession, rounds: Sequence[ReportRound], node: Node | None
) -> list[TrendPoint]:
    """Completeness and timeliness (reported by the due time, of those expected) of each
    of ``rounds`` under the node: one GROUP BY over the rounds given."""
    if not rounds:
        return []
    by_id = {report_round.id: report_round for report_round in rounds}
    reported = HouseholdReport.status != ReportStatus.missing.value
    on_time = and_(reported, HouseholdReport.reported_at <= ReportRound.due_at)
    rows = await session.execute(
        select(
            HouseholdReport.round_id,
            func.count(HouseholdReport.id),
            func.coalesce(func.sum(case((reported, 1), else_=0)), 0),
            func.coalesce(func.sum(case((on_time, 1), else_=0)), 0),
        )
        .join(ReportRound, ReportRound.id == HouseholdReport.round_id)
        .where(HouseholdReport.round_id.in_(list(by_id)), _report_within(node))
        .group_by(HouseholdReport.round_id)
    )
    points = {
        round_id: TrendPoint(
            round_id, by_id[round_id].date.isoformat(), int(expected), int(done), int(on_time)
        )
        for round_id, expected, done, on_time in rows
    }
    return [points.get(r.id, TrendPoint(r.id, r.date.isoformat(), 0, 0, 0)) for r in rounds]


# --- what changed ---------------------------------------------------------------------


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


# --- export ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportLine:
    path: str
    room: str
    status: str
    reported_at: datetime | None
    alert: bool
    answers: str


async def report_lines(
    session: AsyncSession, report_round: ReportRound, node: Node | None, form: Form, locale: str
) -> list[ReportLine]:
    """Every household report of the round under the node, answers worded in ``locale``,
    by unit path and room: what the console's export holds."""
    rows = await session.execute(
        select(
            Node.path,
            Household.room,
            HouseholdReport.status,
            HouseholdReport.reported_at,
            HouseholdReport.alert,
            HouseholdReport.answers,
        )
        .join(Household, Household.id == HouseholdReport.household_id)
        .join(Node, Node.id == HouseholdReport.unit_id)
        .where(HouseholdReport.round_id == report_round.id, _report_within(node))
    )
    lines = []
    for path, room, status, reported_at, alert, answers in rows:
        worded = []
        for field_id, answer in (answers or {}).items():
            labels = form.answer_labels(field_id, answer).get(locale)
            if labels is not None and answer not in (None, [], ""):
                worded.append(f"{labels[0]}: {labels[1]}")
        lines.append(
            ReportLine(
                path,
                room,
                status,
                as_utc(reported_at) if reported_at else None,
                bool(alert),
                "; ".join(worded),
            )
        )
    return sorted(lines, key=lambda line: (line.path, room_order(line.room)))


async def nodes_by_id(session: AsyncSession, ids: Sequence[int]) -> list[Node]:
    return list(
        await session.scalars(select(Node).where(Node.id.in_(list(ids))).order_by(Node.path))
    )
