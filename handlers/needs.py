"""/needs (生活保障、看病就医): the need tickets in one's subtrees, paged; one ticket with the
steps its reader may take (take, resolve with a note, confirm or reopen), each press
re-authorised by the domain."""

import html
from zoneinfo import ZoneInfo

from aiogram import F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.i18n import t
from handlers.actions import NEED_STEPS, NeedPress, button
from handlers.directory import caller_scope
from handlers.filters import NOT_A_COMMAND, Matches, private_buttons
from handlers.ids import Number, RowId
from handlers.rendering import clip_html
from models.access import scope_of
from models.base import utcnow
from models.messages import Action
from models.need_steps import (
    Changed,
    NeedStep,
    allowed_steps,
    authorise,
    change_need,
)
from models.need_views import NeedView, need_for, needs_in_scope
from models.needs import KNOWN_KINDS, NOTE_LENGTH, NeedLimits, NeedStatus

PER_PAGE = 8
# The action each step's button stands for.
STEP_ACTIONS = {step: kind for kind, (step, _) in NEED_STEPS.items()}


class Resolving(StatesGroup):
    note = State()


class NeedsPage(CallbackData, prefix="ndpg"):
    page: Number


class NeedOpen(CallbackData, prefix="ndop"):
    need_id: RowId


def limits_of(config: Config) -> NeedLimits:
    return NeedLimits(config.needs.due_hours)


def kind_label(kind: str) -> str:
    return t(f"need.kind.{kind}") if kind in KNOWN_KINDS else kind


def due_text(need: NeedView, config: Config) -> str:
    due = limits_of(config).due_at(need.kind, need.opened_at)
    local = due.astimezone(ZoneInfo(config.i18n.timezone)).strftime("%m-%d %H:%M")
    late = need.status in (NeedStatus.open, NeedStatus.taken) and due <= utcnow()
    return t("need.overdue_mark", due=local) if late else local


# --- the list -----------------------------------------------------------------------------


async def list_needs(message: Message, session: AsyncSession, config: Config) -> None:
    scope = await caller_scope(message, session, config)
    if scope is None or message.from_user is None:
        return
    text, markup = await page_view(session, config, message.from_user.id, 0)
    await message.answer(text, reply_markup=markup)


async def page_turned(
    callback: CallbackQuery, callback_data: NeedsPage, session: AsyncSession, config: Config
) -> None:
    await callback.answer()
    if isinstance(callback.message, Message):
        text, markup = await page_view(session, config, callback.from_user.id, callback_data.page)
        try:
            await callback.message.edit_text(text, reply_markup=markup)
        except TelegramBadRequest as error:
            # A page clamped into range can be the one already shown.
            if "not modified" not in error.message:
                raise


async def page_view(
    session: AsyncSession, config: Config, telegram_id: int, page: int
) -> tuple[str, InlineKeyboardMarkup | None]:
    scope = await scope_of(session, telegram_id, config.admins.telegram_ids)
    listed = await needs_in_scope(session, scope, telegram_id, page, PER_PAGE)
    if not listed.total:
        return t("need.none"), None
    lines = [t("need.list_title", count=listed.total, page=listed.page + 1, pages=listed.pages)]
    buttons = InlineKeyboardBuilder()
    for need in listed.needs:
        lines.append(
            t(
                "need.list_entry",
                id=need.id,
                kind=kind_label(need.kind),
                path=need.path,
                room=need.room or "—",
                status=t(f"need.status.{need.status.value}"),
                due=due_text(need, config),
            )
        )
        buttons.button(
            text=f"#{need.id} {kind_label(need.kind)} · {need.room or need.path}",
            callback_data=NeedOpen(need_id=need.id),
        )
    buttons.adjust(2)
    if listed.pages > 1:
        navigation = InlineKeyboardBuilder()
        if listed.page > 0:
            navigation.button(text="◀", callback_data=NeedsPage(page=listed.page - 1))
        if listed.page + 1 < listed.pages:
            navigation.button(text="▶", callback_data=NeedsPage(page=listed.page + 1))
        buttons.attach(navigation)
    return clip_html("\n".join(lines)), buttons.as_markup()


# --- one ticket ---------------------------------------------------------------------------


async def need_opened(
    callback: CallbackQuery, callback_data: NeedOpen, session: AsyncSession, config: Config
) -> None:
    text, markup = await ticket_view(session, config, callback.from_user.id, callback_data.need_id)
    if text is None:
        await callback.answer(t("need.not_visible"), show_alert=True)
        return
    await callback.answer()
    if isinstance(callback.message, Message):
        await callback.message.answer(text, reply_markup=markup)


async def ticket_view(
    session: AsyncSession, config: Config, telegram_id: int, need_id: int
) -> tuple[str | None, InlineKeyboardMarkup | None]:
    command_centre = config.admins.telegram_ids
    need = await need_for(session, need_id, telegram_id, command_centre)
    if need is None:
        return None, None
    text = t(
        "need.detail",
        id=need.id,
        kind=kind_label(need.kind),
        path=need.path,
        room=need.room or "—",
        note=need.note or "—",
        status=t(f"need.status.{need.status.value}"),
        due=due_text(need, config),
        taken_by=need.taken_by_name or "—",
        resolution=need.resolution or "—",
    )
    steps = await allowed_steps(session, need_id, telegram_id, command_centre)
    return clip_html(text), step_buttons(need_id, steps)


def step_buttons(need_id: int, steps: list[NeedStep]) -> InlineKeyboardMarkup | None:
    if not steps:
        return None
    row = [button(Action(STEP_ACTIONS[step.value], need_id)) for step in steps]
    return InlineKeyboardMarkup(inline_keyboard=[row])


# --- steps ----------------------------------------------------------------------------------


async def step_pressed(
    callback: CallbackQuery,
    callback_data: NeedPress,
    session: AsyncSession,
    config: Config,
    state: FSMContext,
) -> None:
    try:
        step = NeedStep(callback_data.step)
    except ValueError:
        await callback.answer(t("fallback.stale_button"), show_alert=True)
        return
    user = callback.from_user
    command_centre = config.admins.telegram_ids
    if step is NeedStep.resolve:
        check = await authorise(session, callback_data.need_id, step, user.id, command_centre)
        if check.outcome is not Changed.done:
            await refuse(callback, check.outcome, check.taken_by)
            return
        await callback.answer()
        await state.set_state(Resolving.note)
        await state.update_data(need_id=callback_data.need_id)
        if isinstance(callback.message, Message):
            await callback.message.answer(t("need.ask_resolution", id=callback_data.need_id))
        return
    change = await change_need(
        session, callback_data.need_id, step, user.id, user.full_name, command_centre
    )
    if change.outcome is not Changed.done:
        await refuse(callback, change.outcome, change.taken_by)
        return
    await callback.answer(t(f"need.{step.value}_done", id=callback_data.need_id))
    if isinstance(callback.message, Message):
        if callback.message.reply_markup is not None:
            await callback.message.edit_reply_markup(reply_markup=None)
        text, markup = await ticket_view(session, config, user.id, callback_data.need_id)
        if text is not None:
            await callback.message.answer(text, reply_markup=markup)


async def refuse(callback: CallbackQuery, outcome: Changed, taken_by: str | None) -> None:
    if outcome is Changed.refused:
        text = t("need.not_yours")
    elif outcome is Changed.stale:
        text = t("need.stale", name=taken_by or "—")
    else:
        text = t("fallback.stale_button")
    # Popups are plain text: names go in as they are.
    await callback.answer(html.unescape(text), show_alert=True)


async def resolution_given(
    message: Message, session: AsyncSession, config: Config, state: FSMContext
) -> None:
    note = (message.text or "").strip()
    if not note or len(note) > NOTE_LENGTH:
        await message.answer(t("need.resolution_length", limit=NOTE_LENGTH))
        return
    need_id = (await state.get_data()).get("need_id")
    await state.clear()
    user = message.from_user
    if not isinstance(need_id, int) or user is None:
        await message.answer(t("fallback.stale_button"))
        return
    change = await change_need(
        session,
        need_id,
        NeedStep.resolve,
        user.id,
        user.full_name,
        config.admins.telegram_ids,
        note=note,
    )
    if change.outcome is Changed.refused:
        await message.answer(t("need.not_yours"))
    elif change.outcome is not Changed.done:
        await message.answer(t("need.stale", name=change.taken_by or "—"))
    else:
        await message.answer(t("need.resolve_done", id=need_id))


async def text_expected(message: Message) -> None:
    await message.answer(t("need.resolution_length", limit=NOTE_LENGTH))


def setup() -> Router:
    """This feature's router, new on every call (a test or a second dispatcher gets its own)."""
    router = Router(name=__name__)
    router.message.filter(Matches(F.chat.type == "private"))
    router.message.register(list_needs, Command("needs"))
    router.message.register(
        resolution_given,
        StateFilter(Resolving.note),
        Matches(F.text),
        NOT_A_COMMAND,
    )
    router.message.register(text_expected, StateFilter(Resolving.note), Matches(~F.text))
    # Tickets carry household needs: their buttons work in private chats only.
    private = private_buttons(router, NeedsPage, NeedOpen, NeedPress)
    private.callback_query.register(page_turned, NeedsPage.filter())
    private.callback_query.register(need_opened, NeedOpen.filter())
    private.callback_query.register(step_pressed, NeedPress.filter())
    return router
