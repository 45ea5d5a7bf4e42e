"""Exports of a round (PRODUCT.md §3.10): the reports of a subtree's households, one row per
household with every form field by its label, the need tickets those reports opened, and
post coverage — node paths in every row. Read set-based; writing the file is
``models.spreadsheets``'; every export is audited.

Headers and statuses are catalog keys (``Worded``): the caller words them in the reader's
language, which the domain does not know how to do.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.audit import record
from models.base import as_utc
from models.forms import FieldKind, Form
from models.needs import Need
from models.org import Household, Level, Member, Node, Post, under
from models.reports import room_order
from models.rounds import HouseholdReport, ReportRound, form_of
from models.spreadsheets import Sheet


@dataclass(frozen=True)
class Worded:
    """A catalog key, worded in the reader's language when the file is written."""

    key: str


Cell = str | int | bool | datetime | Worded | None


@dataclass(frozen=True)
class Table:
    # The sheet's name, a catalog key.
    title: Worded
    # A catalog key, or a label already in the reader's language (a form field's).
    columns: list[Worded | str]
    rows: list[list[Cell]]


@dataclass(frozen=True)
class RoundExport:
    round_date: str
    # The subtrees exported, by path; empty: the county.
    paths: list[str]
    reports: Table
    needs: Table
    coverage: Table

    @property
    def tables(self) -> list[Table]:
        return [self.reports, self.needs, self.coverage]


def _reports_under(nodes: Sequence[Node] | None) -> ColumnElement[bool]:
    if nodes is None:
        return literal(True)
    conditions: list[ColumnElement[bool]] = []
    for node in nodes:
        column: ColumnElement[int] = getattr(HouseholdReport, Level(node.level).ancestor_column)
        conditions.append(column == node.id)
    return or_(*conditions) if conditions else literal(False)


def _nodes_under(nodes: Sequence[Node] | None) -> ColumnElement[bool]:
    if nodes is None:
        return literal(True)
    return or_(*(under(node) for node in nodes)) if nodes else literal(False)


def answer_cell(form: Form, field_id: str, answer: Any, locale: str) -> Cell:
    field = form.field(field_id)
    if field is None or answer is None:
        return None
    if field.kind is FieldKind.integer and isinstance(answer, int):
        return answer
    if field.kind in (FieldKind.single, FieldKind.multi):
        items = answer if isinstance(answer, list) else [answer]
        return "、".join(
            choice.label(locale) if (choice := field.choice(str(item))) else str(item)
            for item in items
        )
    return str(answer)


async def _report_table(
    session: AsyncSession,
    report_round: ReportRound,
    nodes: Sequence[Node] | None,
    form: Form,
    locale: str,
) -> Table:
    rows = await session.execute(
        select(
            Node.path,
            Household.room,
            HouseholdReport.status,
            HouseholdReport.how,
            HouseholdReport.reported_at,
            HouseholdReport.alert,
            HouseholdReport.answers,
        )
        .join(Household, Household.id == HouseholdReport.household_id)
        .join(Node, Node.id == HouseholdReport.unit_id)
        .where(HouseholdReport.round_id == report_round.id, _reports_under(nodes))
    )
    lines: list[tuple[str, str, list[Cell]]] = []
    for path, room, status, how, reported_at, alert, answers in rows:
        given: Mapping[str, Any] = answers or {}
        cells: list[Cell] = [
            path,
            room,
            Worded(f"export.status.{status}"),
            Worded(f"export.how.{how}") if how else None,
            as_utc(reported_at) if reported_at else None,
            Worded("export.yes") if alert else None,
        ]
        cells += [answer_cell(form, field.id, given.get(field.id), locale) for field in form.fields]
        lines.append((path, room, cells))
    lines.sort(key=lambda line: (line[0], room_order(line[1])))
    columns: list[Worded | str] = [
        Worded("export.col.path"),
        Worded("export.col.room"),
        Worded("export.col.status"),
        Worded("export.col.how"),
        Worded("export.col.reported_at"),
        Worded("export.col.alert"),
    ]
    columns += [field.label(locale) for field in form.fields]
    return Table(Worded("export.sheet.reports"), columns, [cells for _, _, cells in lines])


async def _need_table(
    session: AsyncSession, report_round: ReportRound, nodes: Sequence[Node] | None
) -> Table:
    rows = await session.execute(
        select(
            Need.id,
            Node.path,
            Household.room,
            Need.kind,
            Need.status,
            Need.opened_at,
            Need.taken_at,
            Need.resolved_at,
            Need.confirmed_at,
            Need.note,
            Need.resolution,
        )
        .join(HouseholdReport, HouseholdReport.id == Need.report_id)
        .join(Node, Node.id == Need.unit_node_id)
        .outerjoin(Household, Household.id == Need.household_id)
        .where(HouseholdReport.round_id == report_round.id, _reports_under(nodes))
        .order_by(Node.path, Need.id)
    )
    table_rows: list[list[Cell]] = []
    for need_id, path, room, kind, status, opened, taken, resolved, confirmed, note, done in rows:
        table_rows.append(
            [
                need_id,
                path,
                room,
                Worded(f"need.kind.{kind}"),
                Worded(f"export.need.{status}"),
                as_utc(opened),
                as_utc(taken) if taken else None,
                as_utc(resolved) if resolved else None,
                as_utc(confirmed) if confirmed else None,
                note,
                done,
            ]
        )
    columns: list[Worded | str] = [
        Worded(f"export.col.{name}")
        for name in (
            "need_id",
            "path",
            "room",
            "kind",
            "status",
            "opened_at",
            "taken_at",
            "resolved_at",
            "confirmed_at",
            "note",
            "resolution",
        )
    ]
    return Table(Worded("export.sheet.needs"), columns, table_rows)


async def _coverage_table(session: AsyncSession, nodes: Sequence[Node] | None) -> Table:
    """Every post under the nodes: held, vacant, or held by someone the bot cannot reach."""
    rows = await session.execute(
        select(Node.path, Node.level, Post.role, Post.holder_id, Member.reachable)
        .join(Node, Node.id == Post.node_id)
        .outerjoin(Member, Member.id == Post.holder_id)
        .where(_nodes_under(nodes))
        .order_by(Node.path, Post.role)
    )
    table_rows: list[list[Cell]] = []
    for path, level, role, holder_id, reachable in rows:
        state = "vacant" if holder_id is None else "held" if reachable else "unreachable"
        table_rows.append(
            [
                path,
                Worded(f"level.{level}"),
                Worded(f"post.{level}.{role}"),
                Worded(f"export.post.{state}"),
            ]
        )
    columns: list[Worded | str] = [
        Worded("export.col.path"),
        Worded("export.col.level"),
        Worded("export.col.post"),
        Worded("export.col.post_state"),
    ]
    return Table(Worded("export.sheet.coverage"), columns, table_rows)


async def export_round(
    session: AsyncSession,
    report_round: ReportRound,
    nodes: Sequence[Node] | None,
    locale: str,
    actor_telegram_id: int | None,
    via: str,
) -> RoundExport:
    """The round's reports, needs and post coverage under ``nodes`` (None: the county),
    form fields labelled in ``locale``. Access is the caller's to check. Audited; commits."""
    form = await form_of(session, report_round)
    export = RoundExport(
        round_date=report_round.date.isoformat(),
        paths=[node.path for node in nodes] if nodes is not None else [],
        reports=await _report_table(session, report_round, nodes, form, locale),
        needs=await _need_table(session, report_round, nodes),
        coverage=await _coverage_table(session, nodes),
    )
    record(
        session,
        "export.round",
        actor_telegram_id,
        round_date=export.round_date,
        node_ids=[node.id for node in nodes] if nodes is not None else None,
        reports=len(export.reports.rows),
        needs=len(export.needs.rows),
        via=via,
    )
    await session.commit()
    return export


def export_sheets(export: RoundExport, word: Callable[[str], str], timezone: str) -> list[Sheet]:
    """The export as sheets of plain cells: keys worded, instants in the county's time."""
    zone = ZoneInfo(timezone)

    def plain(cell: Cell) -> str | int | None:
        if isinstance(cell, Worded):
            return word(cell.key)
        if isinstance(cell, datetime):
            return cell.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
        if isinstance(cell, bool):
            return int(cell)
        return cell

    return [
        Sheet(
            word(table.title.key),
            [
                word(column.key) if isinstance(column, Worded) else column
                for column in table.columns
            ],
            [[plain(cell) for cell in row] for row in table.rows],
        )
        for table in export.tables
    ]
