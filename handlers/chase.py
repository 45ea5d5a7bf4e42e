"""/late [PATH]: who is holding the round's deadline under one's posts, drilled down node by
node to the late units, their rooms and whether their lead and officer can be reached; and
the "nudge" button of a ladder step's message. Private chat; every press re-authorised."""

from zoneinfo import ZoneInfo

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.forms import round_schedule
from bot.i18n import t
from handlers.actions import LateNudge
from handlers.directory import caller_scope, visible_node
from handlers.filters import Matches, private_buttons
from handlers.ids import Number
from handlers.rendering import answer_in_parts, clip_html, post_title
from models.access import Scope, scope_of
from models.chase_nudge import NudgeOutcome, nudge
from models.forms import Form
from models.late_view import LateView, late_view, roots_of
from models.lateness import PostState, PostStatus
from models.org import Level, Node
from models.reports import LARGEST_ID
from models.rounds import ReportRound, current_round

# Buttons to drill into; a county's 47 zones fit.
MAX_BUTTONS = 60


class LateDrill(CallbackData, prefix="late"):
    """Show the late units under a node (0: the county)."""

    node_id: Number


def timezone_of(config: Config) -> str:
    return config.reports.timezone or config.i18n.timezone


async def late_command(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    config: Config,
    report_form: Form,
) -> None:
    scope = await caller_scope(message, session, config)
    if scope is None:
        return
    report_round = await current_round(session, round_schedule(config), report_form)
    if report_round is None:
        await message.answer(t("late.no_round"))
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
        nodes = list(await roots_of(session, scope))
    for node in nodes[:5]:
        text, markup = await view(session, config, scope, report_round, node)
        await answer_in_parts(message, text, markup)


async def drilled(
    callback: CallbackQuery,
    callback_data: LateDrill,
    session: AsyncSession,
    config: Config,
    report_form: Form,
) -> None:
    scope = await scope_of(session, callback.from_user.id, config.admins.telegram_ids)
    node_id = callback_data.node_id
    node = await session.get(Node, node_id) if 0 < node_id <= LARGEST_ID else None
    allowed = scope.is_admin if node_id == 0 else node is not None and scope.sees(node)
    if not allowed:
        await callback.answer(t("late.not_yours"), show_alert=True)
        return
    report_round = await current_round(session, round_schedule(config), report_form)
    if report_round is None:
        await callback.answer(t("late.no_round"), show_alert=True)
        return
    await callback.answer()
    text, markup = await view(session, config, scope, report_round, node)
    if isinstance(callback.message, Message):
        try:
            # One message is edited in place: what does not fit is cut, not split.
            await callback.message.edit_text(clip_html(text), reply_markup=markup)
        except TelegramBadRequest as error:
            if "not modified" not in error.message:
                raise


async def nudged(
    callback: CallbackQuery, callback_data: LateNudge, session: AsyncSession, config: Config
) -> None:
    outcome = await nudge(
        session,
        callback_data.step_id,
        callback.from_user.id,
        config.admins.telegram_ids,
        timezone_of(config),
    )
    if outcome.outcome is NudgeOutcome.nudged:
        text = t("chase.nudge_sent", units=outcome.units, people=outcome.people)
    else:
        text = t(f"chase.nudge_{outcome.outcome.value}")
    await callback.answer(text, show_alert=True)


async def view(
    session: AsyncSession,
    config: Config,
    scope: Scope,
    report_round: ReportRound,
    node: Node | None,
) -> tuple[str, InlineKeyboardMarkup | None]:
    late = await late_view(session, report_round, node)
    return render(late, timezone_of(config)), keyboard(late, scope)


def render(late: LateView, timezone: str) -> str:
    due = late.due_at.astimezone(ZoneInfo(timezone)).strftime("%H:%M")
    scope_name = late.node.path if late.node is not None else t("chase.county")
    lines = [t("late.title", scope=scope_name, date=late.round_date, due=due)]
    if not late.units:
        lines.append(t("late.none"))
        return "\n".join(lines)
    lines.append(t("late.summary", units=late.units, missing=late.missing))
    if late.children and not late.lines:
        lines += [
            t("late.child", name=child.name, units=child.units, missing=child.missing)
            for child in late.children
        ]
    for line in late.lines:
        lines.append(
            t("late.unit", unit=line.label, missing=line.unit.missing, rooms=", ".join(line.rooms))
        )
        lines.append(t("late.posts", lead=post_state(line.lead), officer=post_state(line.officer)))
    return "\n".join(lines)


def post_state(status: PostStatus) -> str:
    title = post_title(Level.unit.value, status.role.value)
    if status.state is PostState.vacant:
        return t("late.post_vacant", title=title)
    if status.state is PostState.unreachable:
        return t("late.post_unreachable", title=title, name=status.name or "")
    return t("late.post_held", title=title, name=status.name or "")


def keyboard(late: LateView, scope: Scope) -> InlineKeyboardMarkup | None:
    buttons = InlineKeyboardBuilder()
    if not late.lines:
        for child in late.children[:MAX_BUTTONS]:
            buttons.button(
                text=f"{child.name} · {child.units}/{child.missing}",
                callback_data=LateDrill(node_id=child.node_id),
            )
    node = late.node
    if node is not None:
        parent_id = node.parent_id
        if parent_id is None and scope.is_admin:
            buttons.button(text=t("late.up"), callback_data=LateDrill(node_id=0))
        elif parent_id is not None and _sees_parent(scope, node):
            buttons.button(text=t("late.up"), callback_data=LateDrill(node_id=parent_id))
    buttons.adjust(2)
    markup = buttons.as_markup()
    return markup if markup.inline_keyboard else None


def _sees_parent(scope: Scope, node: Node) -> bool:
    """The reader holds a post at or above the node's parent."""
    if scope.is_admin:
        return True
    parent_depth = Level(node.level).depth - 1
    return any(
        Level(level).depth <= parent_depth
        and getattr(node, Level(level).ancestor_column) == root_id
        for root_id, level in scope.roots
    )


def setup() -> Router:
    """This feature's router, new on every call (a test or a second dispatcher gets its own)."""
    router = Router(name=__name__)
    router.message.filter(Matches(F.chat.type == ChatType.PRIVATE))
    router.message.register(late_command, Command("late"))
    private = private_buttons(router, LateDrill, LateNudge)
    private.callback_query.register(drilled, LateDrill.filter())
    private.callback_query.register(nudged, LateNudge.filter())
    return router
