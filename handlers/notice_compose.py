"""/notice: compose a notice down the tree, step by step, with a preview before it goes."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from aiogram import Bot, F, Router
from aiogram.filters import Command, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.i18n import Raw, t
from handlers.actions import button
from handlers.filters import NOT_A_COMMAND, Matches, private_buttons
from handlers.ids import Number
from models.access import Scope, scope_of
from models.base import utcnow
from models.messages import Action, ActionKind
from models.notice_delivery import set_progress_message
from models.notices import (
    NoticeDraft,
    NoticeRefused,
    bound_groups_in,
    create_notice,
    levels_below,
    recipients_of,
    within_send_window,
)
from models.org import Node
from models.posts import node_by_path
from models.text import shown

COUNTY = 0  # the scope button for the whole county (admins)


class Composing(StatesGroup):
    content = State()
    scope = State()
    levels = State()
    ack = State()
    when = State()
    time = State()
    confirm = State()


class ScopeChoice(CallbackData, prefix="nsc"):
    node_id: Number


class LevelToggle(CallbackData, prefix="nlv"):
    level: str  # a level, or "done"


class AckChoice(CallbackData, prefix="nak"):
    wanted: bool


class WhenChoice(CallbackData, prefix="nwh"):
    now: bool


class ConfirmChoice(CallbackData, prefix="ncf"):
    send: bool


async def start_composing(
    message: Message, session: AsyncSession, config: Config, state: FSMContext
) -> None:
    user = message.from_user
    if user is None or (await _scope(user.id, session, config)).is_empty:
        # Someone holding no post (never registered, or since left): how to get one.
        await message.answer(t("notice.not_registered"))
        return
    await state.clear()
    await state.set_state(Composing.content)
    await message.answer(t("notice.ask_content"))


async def text_content(
    message: Message, state: FSMContext, session: AsyncSession, config: Config
) -> None:
    # html_text renders the author's own bold, links… as escaped HTML.
    await state.update_data(text=message.html_text, from_chat_id=None, message_id=None)
    await ask_scope(message, state, session, config)


async def forwarded_content(
    message: Message, state: FSMContext, session: AsyncSession, config: Config
) -> None:
    # Only what carries a caption: the notice's header (from whom, its number, when) goes
    # there, above the author's own caption.
    if not (
        message.photo
        or message.video
        or message.document
        or message.audio
        or message.voice
        or message.animation
    ):
        await message.answer(t("notice.content_unsupported"))
        return
    await state.update_data(
        text=message.html_text if message.caption else None,
        from_chat_id=message.chat.id,
        message_id=message.message_id,
    )
    await ask_scope(message, state, session, config)


async def ask_scope(
    message: Message, state: FSMContext, session: AsyncSession, config: Config
) -> None:
    user = message.from_user
    scope = await scope_of(session, user.id, config.admins.telegram_ids) if user else None
    if scope is None or scope.is_empty:
        await state.clear()
        await message.answer(t("directory.no_scope"))
        return
    buttons = InlineKeyboardBuilder()
    if scope.is_admin:
        buttons.button(text=t("tree.county"), callback_data=ScopeChoice(node_id=COUNTY))
    for node_id, _ in sorted(scope.roots):
        node = await session.get(Node, node_id)
        if node is not None:
            buttons.button(text=node.path, callback_data=ScopeChoice(node_id=node.id))
    buttons.adjust(1)
    await state.set_state(Composing.scope)
    hint = t("notice.ask_scope_admin") if scope.is_admin else t("notice.ask_scope")
    await message.answer(hint, reply_markup=buttons.as_markup())


async def scope_typed(
    message: Message, state: FSMContext, session: AsyncSession, config: Config
) -> None:
    scope = await _scope(message.from_user.id if message.from_user else 0, session, config)
    node = await node_by_path(session, message.text or "")
    if node is None or not scope.sees(node):
        await message.answer(t("directory.not_in_scope", path=shown(message.text or "")))
        return
    await _scope_chosen(message, state, node)


async def scope_pressed(
    callback: CallbackQuery,
    callback_data: ScopeChoice,
    state: FSMContext,
    session: AsyncSession,
    config: Config,
) -> None:
    scope = await _scope(callback.from_user.id, session, config)
    node = await session.get(Node, callback_data.node_id) if callback_data.node_id else None
    allowed = scope.is_admin if node is None else scope.sees(node)
    if not allowed:
        await callback.answer(t("notice.not_allowed"), show_alert=True)
        return
    await callback.answer()
    if isinstance(callback.message, Message):
        await _scope_chosen(callback.message, state, node)


async def _scope_chosen(message: Message, state: FSMContext, node: Node | None) -> None:
    levels = levels_below(node.level if node else None)
    await state.update_data(
        scope_node_id=node.id if node else COUNTY, levels=levels, choices=levels
    )
    await state.set_state(Composing.levels)
    await message.answer(t("notice.ask_levels"), reply_markup=levels_keyboard(levels, levels))


def levels_keyboard(choices: list[str], chosen: list[str]) -> InlineKeyboardMarkup:
    buttons = InlineKeyboardBuilder()
    for level in choices:
        mark = "✅" if level in chosen else "⬜"
        buttons.button(text=f"{mark} {t(f'level.{level}')}", callback_data=LevelToggle(level=level))
    buttons.button(text=t("notice.next"), callback_data=LevelToggle(level="done"))
    buttons.adjust(2)
    return buttons.as_markup()


async def level_toggled(
    callback: CallbackQuery, callback_data: LevelToggle, state: FSMContext
) -> None:
    data = await state.get_data()
    choices: list[str] = data["choices"]
    chosen: list[str] = data["levels"]
    if callback_data.level == "done":
        if not chosen:
            await callback.answer(t("notice.pick_a_level"), show_alert=True)
            return
        await callback.answer()
        await state.set_state(Composing.ack)
        buttons = InlineKeyboardBuilder()
        buttons.button(text=t("notice.ack_yes"), callback_data=AckChoice(wanted=True))
        buttons.button(text=t("notice.ack_no"), callback_data=AckChoice(wanted=False))
        if isinstance(callback.message, Message):
            await callback.message.answer(t("notice.ask_ack"), reply_markup=buttons.as_markup())
        return
    if callback_data.level not in choices:
        await callback.answer(t("fallback.stale_button"), show_alert=True)
        return
    chosen = [level for level in choices if (level in chosen) != (level == callback_data.level)]
    await state.update_data(levels=chosen)
    await callback.answer()
    if isinstance(callback.message, Message):
        await callback.message.edit_reply_markup(reply_markup=levels_keyboard(choices, chosen))


async def ack_chosen(callback: CallbackQuery, callback_data: AckChoice, state: FSMContext) -> None:
    await state.update_data(wants_ack=callback_data.wanted)
    await state.set_state(Composing.when)
    await callback.answer()
    buttons = InlineKeyboardBuilder()
    buttons.button(text=t("notice.send_now"), callback_data=WhenChoice(now=True))
    buttons.button(text=t("notice.send_later"), callback_data=WhenChoice(now=False))
    if isinstance(callback.message, Message):
        await callback.message.answer(t("notice.ask_when"), reply_markup=buttons.as_markup())


async def when_chosen(
    callback: CallbackQuery,
    callback_data: WhenChoice,
    state: FSMContext,
    session: AsyncSession,
    config: Config,
    bot: Bot,
) -> None:
    await callback.answer()
    if not isinstance(callback.message, Message):
        return
    if callback_data.now:
        await state.update_data(send_at=None)
        await preview(callback.message, state, session, config, bot)
        return
    await state.set_state(Composing.time)
    await callback.message.answer(t("notice.ask_time", timezone=config.i18n.timezone))


async def time_typed(
    message: Message, state: FSMContext, session: AsyncSession, config: Config, bot: Bot
) -> None:
    send_at = parse_send_time(message.text or "", config.i18n.timezone)
    if send_at is None:
        await message.answer(t("notice.bad_time", timezone=config.i18n.timezone))
        return
    await state.update_data(send_at=send_at.isoformat())
    await preview(message, state, session, config, bot)


def parse_send_time(text: str, timezone: str, now: datetime | None = None) -> datetime | None:
    """``HH:MM`` (today, or tomorrow if past) or ``YYYY-MM-DD HH:MM`` in the county's time
    zone; None unless it lies in the next 30 days."""
    zone = ZoneInfo(timezone)
    local_now = (now or utcnow()).astimezone(zone)
    cleaned = " ".join(text.replace("：", ":").split())
    try:
        if len(cleaned) <= 5:
            clock = datetime.strptime(cleaned, "%H:%M").time()
            moment = datetime.combine(local_now.date(), clock, tzinfo=zone)
            if moment <= local_now:
                moment += timedelta(days=1)
        else:
            moment = datetime.strptime(cleaned, "%Y-%m-%d %H:%M").replace(tzinfo=zone)
    except ValueError:
        return None
    return moment if within_send_window(moment, local_now) else None


async def preview(
    message: Message, state: FSMContext, session: AsyncSession, config: Config, bot: Bot
) -> None:
    data = await state.get_data()
    scope_node = await session.get(Node, data["scope_node_id"]) if data["scope_node_id"] else None
    people = len(await recipients_of(session, scope_node, data["levels"]))
    groups = len(await bound_groups_in(session, scope_node))
    await message.answer(t("notice.preview_heading"))
    if data.get("from_chat_id") is None:
        await message.answer(data["text"])
    else:
        await bot.copy_message(message.chat.id, data["from_chat_id"], data["message_id"])
    when = (
        t("notice.when_now")
        if data.get("send_at") is None
        else datetime.fromisoformat(data["send_at"]).strftime("%Y-%m-%d %H:%M")
    )
    summary = t(
        "notice.summary",
        scope=scope_node.path if scope_node else t("tree.county"),
        levels=Raw("、".join(t(f"level.{level}") for level in data["levels"])),
        ack=t("notice.ack_yes") if data["wants_ack"] else t("notice.ack_no"),
        when=when,
        people=people,
        groups=groups,
    )
    buttons = InlineKeyboardBuilder()
    buttons.button(text=t("notice.confirm_send"), callback_data=ConfirmChoice(send=True))
    buttons.button(text=t("button.cancel"), callback_data=ConfirmChoice(send=False))
    await state.set_state(Composing.confirm)
    await message.answer(summary, reply_markup=buttons.as_markup())


async def confirmed(
    callback: CallbackQuery,
    callback_data: ConfirmChoice,
    state: FSMContext,
    session: AsyncSession,
    config: Config,
    bot: Bot,
) -> None:
    data = await state.get_data()
    await state.clear()
    if isinstance(callback.message, Message):
        await callback.message.edit_reply_markup(reply_markup=None)
    if not callback_data.send:
        await callback.answer()
        await bot.send_message(callback.from_user.id, t("notice.cancelled"))
        return
    send_at = datetime.fromisoformat(data["send_at"]) if data.get("send_at") else None
    draft = NoticeDraft(
        author_telegram_id=callback.from_user.id,
        scope_node_id=data["scope_node_id"] or None,
        levels=list(data["levels"]),
        wants_ack=bool(data["wants_ack"]),
        send_at=send_at,
        text=data.get("text"),
        from_chat_id=data.get("from_chat_id"),
        message_id=data.get("message_id"),
    )
    try:
        # The domain checks the scope again: the author may have lost the post meanwhile.
        notice = await create_notice(
            session, draft, await _scope(callback.from_user.id, session, config)
        )
    except NoticeRefused:
        await callback.answer(t("notice.not_allowed"), show_alert=True)
        return
    await callback.answer()
    markup = None
    if send_at is None:
        status = t("notice.sending", id=notice.id)
    else:
        status = t("notice.scheduled", id=notice.id, when=send_at.strftime("%Y-%m-%d %H:%M"))
        # Until it goes, the author may take it back.
        markup = InlineKeyboardMarkup(
            inline_keyboard=[[button(Action(ActionKind.cancel_notice, notice.id))]]
        )
    progress = await bot.send_message(callback.from_user.id, status, reply_markup=markup)
    await set_progress_message(session, notice.id, progress.chat.id, progress.message_id)


async def _scope(telegram_id: int, session: AsyncSession, config: Config) -> Scope:
    return await scope_of(session, telegram_id, config.admins.telegram_ids)


async def buttons_expected(message: Message) -> None:
    await message.answer(t("notice.use_buttons"))


async def time_expected(message: Message, config: Config) -> None:
    await message.answer(t("notice.bad_time", timezone=config.i18n.timezone))


def setup() -> Router:
    """This feature's router, new on every call (a test or a second dispatcher gets its own)."""
    router = Router(name=__name__)
    router.message.filter(Matches(F.chat.type == "private"))
    router.message.register(
        start_composing, Command("notice"), Matches(F.text.regexp(r"^/notice(@\w+)?\s*$"))
    )
    router.message.register(
        text_content,
        StateFilter(Composing.content),
        Matches(F.text),
        NOT_A_COMMAND,
    )
    router.message.register(forwarded_content, StateFilter(Composing.content), Matches(~F.text))
    router.message.register(
        scope_typed, StateFilter(Composing.scope), Matches(F.text), NOT_A_COMMAND
    )
    router.message.register(time_typed, StateFilter(Composing.time), Matches(F.text), NOT_A_COMMAND)
    # The author's scope and draft: private chat only.
    private = private_buttons(
        router, ScopeChoice, LevelToggle, AckChoice, WhenChoice, ConfirmChoice
    )
    private.callback_query.register(
        scope_pressed, StateFilter(Composing.scope), ScopeChoice.filter()
    )
    private.callback_query.register(
        level_toggled, StateFilter(Composing.levels), LevelToggle.filter()
    )
    private.callback_query.register(ack_chosen, StateFilter(Composing.ack), AckChoice.filter())
    private.callback_query.register(when_chosen, StateFilter(Composing.when), WhenChoice.filter())
    private.callback_query.register(
        confirmed, StateFilter(Composing.confirm), ConfirmChoice.filter()
    )
    router.message.register(buttons_expected, StateFilter(Composing.confirm), NOT_A_COMMAND)
    router.message.register(buttons_expected, StateFilter(Composing.when), NOT_A_COMMAND)
    router.message.register(buttons_expected, StateFilter(Composing.ack), NOT_A_COMMAND)
    router.message.register(buttons_expected, StateFilter(Composing.levels), NOT_A_COMMAND)
    router.message.register(buttons_expected, StateFilter(Composing.scope), NOT_A_COMMAND)
    router.message.register(time_expected, StateFilter(Composing.time), NOT_A_COMMAND)
    return router
