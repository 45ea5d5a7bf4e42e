"""/status [PATH] in private chat: the current round under one's posts per child node, open
alerts and needs, quality flags; /progress in a bound group: its node's counts alone (a group
never sees a household's answers, nor a name)."""

from zoneinfo import ZoneInfo

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.i18n import t
from handlers.directory import caller_scope, visible_node
from handlers.filters import Matches
from handlers.rendering import split_html
from models.audit import record
from models.groups import binding_of
from models.org import Node
from models.round_status import (
    FlaggedUnit,
    Quality,
    SubtreeStatus,
    latest_round,
    node_counts,
    subtree_status,
)

IN_GROUP = Matches(F.chat.type.in_({ChatType.GROUP, ChatType.SUPERGROUP}))
IN_PRIVATE = Matches(F.chat.type == ChatType.PRIVATE)
# Subtrees shown for one /status without a path (a member holding many posts).
MOST_ROOTS = 5


def timezone_of(config: Config) -> str:
    return config.reports.timezone or config.i18n.timezone


def quality_of(config: Config) -> Quality:
    return Quality(config.reports.quality_same_rounds, config.reports.quality_fast_form_s)


async def status_command(
    message: Message, command: CommandObject, session: AsyncSession, config: Config
) -> None:
    scope = await caller_scope(message, session, config)
    if scope is None:
        return
    path = (command.args or "").strip()
    if path:
        node = await visible_node(message, session, scope, path)
        if node is None:
            return
        nodes: list[Node | None] = [node]
    elif scope.is_admin:
        nodes = [None]
    else:
        roots = sorted(node_id for node_id, _level in scope.roots)
        nodes = [await session.get(Node, node_id) for node_id in roots[:MOST_ROOTS]]
    report_round = await latest_round(session)
    if report_round is None:
        await message.answer(t("status.no_round"))
        return
    texts = []
    for node in nodes:
        status = await subtree_status(session, report_round, node, quality_of(config))
        texts.extend(split_html(render(status, timezone_of(config))))
    record(
        session,
        "round_status.viewed",
        message.from_user.id if message.from_user else None,
        round_id=report_round.id,
        node_ids=[node.id if node else None for node in nodes],
    )
    await session.commit()
    for text in texts:
        await message.answer(text)


def render(status: SubtreeStatus, timezone: str) -> str:
    due = status.due_at.astimezone(ZoneInfo(timezone)).strftime("%H:%M")
    where = status.node.path if status.node is not None else t("status.county")
    late_key = "status.late_units" if status.past_due else "status.unfinished_units"
    lines = [
        t("status.title", scope=where, date=status.round_date, due=due),
        t("status.total", done=status.done, total=status.total),
        t(late_key, units=status.late_units),
        t("status.open", alerts=status.alerts_open, needs=status.needs_open),
    ]
    if status.children:
        lines.append("")
        lines.append(t("status.children"))
        child_key = "status.child_late" if status.past_due else "status.child_unfinished"
        for child in status.children:
            if child.late_units:
                lines.append(
                    t(
                        child_key,
                        name=child.name,
                        done=child.done,
                        total=child.total,
                        units=child.late_units,
                    )
                )
            else:
                lines.append(
                    t("status.child_done", name=child.name, done=child.done, total=child.total)
                )
    lines += _flags(status)
    return "\n".join(lines)


def _flags(status: SubtreeStatus) -> list[str]:
    if not status.same_units_total and not status.fast_units_total:
        return []
    lines = ["", t("status.quality")]
    if status.same_units_total:
        rounds = status.same_units[0].count
        lines.append(t("status.same_title", units=status.same_units_total, rounds=rounds))
        lines += _flagged(status, status.same_units, status.same_units_total, "status.same_unit")
    if status.fast_units_total:
        lines.append(t("status.fast_title", units=status.fast_units_total))
        lines += _flagged(status, status.fast_units, status.fast_units_total, "status.fast_unit")
    return lines


def _flagged(status: SubtreeStatus, units: list[FlaggedUnit], total: int, key: str) -> list[str]:
    depth = len(status.node.path.split("/")) if status.node is not None else 0
    lines = [
        t(key, unit="/".join(unit.path.split("/")[depth:]) or unit.path, count=unit.count)
        for unit in units
    ]
    if total > len(units):
        lines.append(t("status.more", count=total - len(units)))
    return lines


async def progress_command(message: Message, session: AsyncSession) -> None:
    """Counts of the group's node only: no names, no rooms, no answers."""
    binding = await binding_of(session, message.chat.id)
    if binding is None:
        await message.answer(t("status.group_not_bound"))
        return
    report_round = await latest_round(session)
    if report_round is None:
        await message.answer(t("status.no_round"))
        return
    node = await session.get(Node, binding.node.node_id)
    counts = await node_counts(session, report_round.id, node)
    await message.answer(
        t(
            "status.group_progress",
            name=binding.node.name,
            date=report_round.date.isoformat(),
            done=counts.done,
            total=counts.total,
            units=counts.late_units,
        )
    )


async def private_only(message: Message) -> None:
    await message.answer(t("status.private_only"))


def setup() -> Router:
    """This feature's router, new on every call (a test or a second dispatcher gets its own)."""
    router = Router(name=__name__)
    router.message.register(status_command, IN_PRIVATE, Command("status"))
    router.message.register(progress_command, IN_GROUP, Command("progress", "status"))
    router.message.register(private_only, IN_PRIVATE, Command("progress"))
    return router
