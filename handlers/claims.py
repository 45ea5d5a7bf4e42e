"""Claiming vacant posts: /vacancies in a bound group (paged buttons) → the volunteer picks
one → private chat: own phone → confirm → the lead one level up approves or declines.
Also /vacancies in private chat: the vacant posts in a lead's or admin's scope."""

import logging
import math
from collections.abc import Awaitable, Callable
from contextlib import suppress
from functools import partial

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import BaseStorage, StorageKey
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardMarkup,
    Message,
    ReplyKeyboardRemove,
    User,
)
from aiogram.utils.deep_linking import create_deep_link
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.i18n import locale_for_language_code, t
from handlers.actions import ClaimDecision, ClaimWithdraw
from handlers.contact import confirm_keyboard, contact_keyboard, is_own_contact
from handlers.rendering import describe_post, post_title
from models.access import Scope, scope_of
from models.claims import (
    Claimable,
    ClaimCheck,
    ClaimView,
    Decision,
    VacancyPage,
    Withdrawal,
    check_claimable,
    decide_claim,
    open_claim,
    vacancies_in_scope,
    vacancies_under,
    withdraw_claim,
)
from models.groups import Binding, binding_of
from models.posts import PostView

logger = logging.getLogger(__name__)
router = Router(name=__name__)

IN_GROUP = F.chat.type.in_({ChatType.GROUP, ChatType.SUPERGROUP})
IN_PRIVATE = F.chat.type == ChatType.PRIVATE
PAGE_SIZE = 8
CLAIM_PAYLOAD = r"^claim_\d{1,12}$"


class Claiming(StatesGroup):
    waiting_for_contact = State()
    waiting_for_confirmation = State()


class GroupVacancyPage(CallbackData, prefix="gvac"):
    page: int


class VacancyPick(CallbackData, prefix="gpick"):
    post_id: int


class ScopeVacancyPage(CallbackData, prefix="pvac"):
    page: int


class ClaimStep(CallbackData, prefix="claim"):
    confirm: bool


# --- vacancies -----------------------------------------------------------------------------


def page_count(total: int) -> int:
    return max(1, math.ceil(total / PAGE_SIZE))


def add_page_buttons(
    buttons: InlineKeyboardBuilder,
    page: int,
    pages: int,
    turn: type[GroupVacancyPage] | type[ScopeVacancyPage],
) -> None:
    navigation = InlineKeyboardBuilder()
    if page > 0:
        navigation.button(text=t("vacancies.prev"), callback_data=turn(page=page - 1))
    if page + 1 < pages:
        navigation.button(text=t("vacancies.next"), callback_data=turn(page=page + 1))
    buttons.attach(navigation)


async def page_of(
    load: Callable[[int, int], Awaitable[VacancyPage]], page: int
) -> tuple[VacancyPage, int]:
    """The requested page, or the last one if vacancies were filled meanwhile."""
    page = max(page, 0)  # the page number comes from a button
    vacancies = await load(page * PAGE_SIZE, PAGE_SIZE)
    last = page_count(vacancies.total) - 1
    if page > last:
        page = last
        vacancies = await load(page * PAGE_SIZE, PAGE_SIZE)
    return vacancies, page


def relative_path(post: PostView, binding: Binding) -> str:
    if post.path == binding.node.path:
        return binding.node.name
    return post.path.removeprefix(binding.node.path + "/")


async def group_page(
    session: AsyncSession, binding: Binding, page: int
) -> tuple[str, InlineKeyboardMarkup | None]:
    load = partial(vacancies_under, session, binding.node.node_id)
    vacancies, page = await page_of(load, page)
    if not vacancies.total:
        return t("vacancies.none_in_group", path=binding.node.path), None
    pages = page_count(vacancies.total)
    buttons = InlineKeyboardBuilder()
    for post in vacancies.posts:
        buttons.button(
            text=f"{post_title(post.level, post.role)} · {relative_path(post, binding)}",
            callback_data=VacancyPick(post_id=post.post_id),
        )
    buttons.adjust(1)
    add_page_buttons(buttons, page, pages, GroupVacancyPage)
    text = t(
        "vacancies.group_header",
        path=binding.node.path,
        count=vacancies.total,
        page=page + 1,
        pages=pages,
    )
    return text, buttons.as_markup()


async def scope_page(
    session: AsyncSession, scope: Scope, page: int
) -> tuple[str, InlineKeyboardMarkup | None]:
    load = partial(vacancies_in_scope, session, scope)
    vacancies, page = await page_of(load, page)
    if not vacancies.total:
        return t("vacancies.scope_none"), None
    pages = page_count(vacancies.total)
    header = t("vacancies.scope_header", count=vacancies.total, page=page + 1, pages=pages)
    lines = "\n".join(f"• {describe_post(post)}" for post in vacancies.posts)
    buttons = InlineKeyboardBuilder()
    add_page_buttons(buttons, page, pages, ScopeVacancyPage)
    markup = buttons.as_markup() if pages > 1 else None
    hint = t("vacancies.scope_hint")
    return f"{header}\n{lines}\n\n{hint}", markup


async def show_page(
    callback: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None
) -> None:
    await callback.answer()
    if isinstance(callback.message, Message):
        with suppress(TelegramBadRequest):  # "message is not modified": nothing changed
            await callback.message.edit_text(text, reply_markup=markup)


@router.message(IN_GROUP, Command("vacancies"))
async def group_vacancies(message: Message, session: AsyncSession) -> None:
    binding = await binding_of(session, message.chat.id)
    if binding is None:
        await message.answer(t("groups.bind_first"))
        return
    text, markup = await group_page(session, binding, 0)
    await message.answer(text, reply_markup=markup)


@router.callback_query(GroupVacancyPage.filter())
async def group_page_turned(
    callback: CallbackQuery, callback_data: GroupVacancyPage, session: AsyncSession
) -> None:
    chat_id = callback.message.chat.id if callback.message else callback.from_user.id
    binding = await binding_of(session, chat_id)
    if binding is None:
        await callback.answer(t("groups.bind_first"), show_alert=True)
        return
    await show_page(callback, *await group_page(session, binding, callback_data.page))


@router.message(IN_PRIVATE, Command("vacancies"))
async def scope_vacancies(message: Message, session: AsyncSession, config: Config) -> None:
    user_id = message.from_user.id if message.from_user else 0
    scope = await scope_of(session, user_id, config.admins.telegram_ids)
    if scope.is_empty:
        await message.answer(t("vacancies.leads_only"))
        return
    text, markup = await scope_page(session, scope, 0)
    await message.answer(text, reply_markup=markup)


@router.callback_query(ScopeVacancyPage.filter())
async def scope_page_turned(
    callback: CallbackQuery, callback_data: ScopeVacancyPage, session: AsyncSession, config: Config
) -> None:
    scope = await scope_of(session, callback.from_user.id, config.admins.telegram_ids)
    if scope.is_empty:
        await callback.answer(t("vacancies.leads_only"), show_alert=True)
        return
    await show_page(callback, *await scope_page(session, scope, callback_data.page))


# --- the volunteer's claim ----------------------------------------------------------------


def private_context(storage: BaseStorage, bot: Bot, user: User) -> FSMContext:
    """The conversation in the user's private chat, while the update came from a group."""
    return FSMContext(storage, StorageKey(bot_id=bot.id, chat_id=user.id, user_id=user.id))


def refusal_text(check: ClaimCheck) -> str:
    return t(f"claims.{check.claimable.value}")


@router.callback_query(VacancyPick.filter())
async def vacancy_picked(
    callback: CallbackQuery,
    callback_data: VacancyPick,
    session: AsyncSession,
    bot: Bot,
    fsm_storage: BaseStorage,
) -> None:
    user = callback.from_user
    chat_id = callback.message.chat.id if callback.message else user.id
    binding = await binding_of(session, chat_id)
    if binding is None:
        await callback.answer(t("groups.bind_first"), show_alert=True)
        return
    check = await check_claimable(session, callback_data.post_id, user.id)
    post = check.post
    group_path = binding.node.path
    if post is None or not (post.path == group_path or post.path.startswith(group_path + "/")):
        await callback.answer(t("vacancies.not_here"), show_alert=True)
        return
    if check.claimable is not Claimable.yes:
        await callback.answer(refusal_text(check), show_alert=True)
        return
    # Straight into the private chat when the volunteer has started the bot; otherwise a
    # t.me deep link, which answerCallbackQuery may open for any button
    # (https://core.telegram.org/bots/api#answercallbackquery).
    state = private_context(fsm_storage, bot, user)
    await state.set_state(Claiming.waiting_for_contact)
    await state.set_data({"post_id": post.post_id})
    try:
        await bot.send_message(
            user.id, t("claims.offered", post=describe_post(post)), reply_markup=contact_keyboard()
        )
    except (TelegramForbiddenError, TelegramBadRequest):
        await state.clear()
        username = (await bot.me()).username or ""
        await callback.answer(url=create_deep_link(username, "start", f"claim_{post.post_id}"))
        return
    await callback.answer(t("claims.continue_in_private"))


@router.message(IN_PRIVATE, CommandStart(deep_link=True, magic=F.args.regexp(CLAIM_PAYLOAD)))
async def start_claim(
    message: Message, command: CommandObject, session: AsyncSession, state: FSMContext
) -> None:
    await state.clear()
    post_id = int((command.args or "").removeprefix("claim_"))
    user_id = message.from_user.id if message.from_user else 0
    check = await check_claimable(session, post_id, user_id)
    if check.claimable is not Claimable.yes or check.post is None:
        await message.answer(refusal_text(check))
        return
    await state.set_state(Claiming.waiting_for_contact)
    await state.set_data({"post_id": post_id})
    await message.answer(
        t("claims.offered", post=describe_post(check.post)), reply_markup=contact_keyboard()
    )


@router.message(Claiming.waiting_for_contact, F.contact)
async def claim_contact_shared(message: Message, state: FSMContext, session: AsyncSession) -> None:
    contact = message.contact
    if contact is None or message.from_user is None or not is_own_contact(message):
        await message.answer(t("claims.not_own_contact"), reply_markup=contact_keyboard())
        return
    data = await state.get_data()
    check = await check_claimable(session, int(data["post_id"]), message.from_user.id)
    if check.claimable is not Claimable.yes or check.post is None:
        await state.clear()
        await message.answer(refusal_text(check), reply_markup=ReplyKeyboardRemove())
        return
    await state.update_data(phone=contact.phone_number)
    await state.set_state(Claiming.waiting_for_confirmation)
    await message.answer(t("claims.phone_received"), reply_markup=ReplyKeyboardRemove())
    await message.answer(
        t("claims.confirm", post=describe_post(check.post), phone=contact.phone_number),
        reply_markup=confirm_keyboard(ClaimStep(confirm=True), ClaimStep(confirm=False)),
    )


@router.message(Claiming.waiting_for_contact, ~F.text.startswith("/"))
async def claim_contact_expected(message: Message) -> None:
    await message.answer(t("claims.contact_expected"), reply_markup=contact_keyboard())


@router.message(Claiming.waiting_for_confirmation, ~F.text.startswith("/"))
async def claim_confirmation_expected(message: Message) -> None:
    await message.answer(t("claims.confirmation_expected"))


@router.callback_query(Claiming.waiting_for_confirmation, ClaimStep.filter())
async def claim_confirmed(
    callback: CallbackQuery,
    callback_data: ClaimStep,
    state: FSMContext,
    session: AsyncSession,
    bot: Bot,
    config: Config,
) -> None:
    data = await state.get_data()
    await state.clear()
    await callback.answer()
    user = callback.from_user
    if isinstance(callback.message, Message):
        with suppress(TelegramBadRequest):
            await callback.message.edit_reply_markup(reply_markup=None)
    if not callback_data.confirm:
        await bot.send_message(user.id, t("claims.cancelled"))
        return
    outcome = await open_claim(
        session,
        int(data["post_id"]),
        telegram_id=user.id,
        name=user.full_name,
        phone=str(data["phone"]),
        locale=locale_for_language_code(user.language_code, config.i18n.default_locale),
        username=user.username,
        command_centre_ids=config.admins.telegram_ids,
    )
    if outcome.claimable is not Claimable.yes or outcome.post is None or outcome.claim_id is None:
        await bot.send_message(user.id, refusal_text(outcome))
        return
    withdraw = InlineKeyboardBuilder()
    withdraw.button(
        text=t("claims.withdraw_button"), callback_data=ClaimWithdraw(claim_id=outcome.claim_id)
    )
    await bot.send_message(
        user.id,
        t("claims.sent", post=describe_post(outcome.post)),
        reply_markup=withdraw.as_markup(),
    )


@router.callback_query(ClaimStep.filter())
async def claim_button_out_of_conversation(callback: CallbackQuery) -> None:
    await callback.answer(t("fallback.stale_button"), show_alert=True)


# --- the decision ------------------------------------------------------------------------


@router.callback_query(ClaimDecision.filter())
async def claim_decided(
    callback: CallbackQuery,
    callback_data: ClaimDecision,
    session: AsyncSession,
    bot: Bot,
    config: Config,
) -> None:
    user = callback.from_user
    scope = await scope_of(session, user.id, config.admins.telegram_ids)
    outcome = await decide_claim(
        session, callback_data.claim_id, callback_data.approve, scope, user.id
    )
    claim = outcome.claim
    if outcome.decision is Decision.unknown:
        await callback.answer(t("claims.unknown_claim"), show_alert=True)
        return
    if outcome.decision is Decision.forbidden:
        await callback.answer(t("claims.not_yours_to_decide"), show_alert=True)
        return
    await remove_buttons(callback)
    if claim is None:
        await callback.answer(t("claims.unknown_claim"), show_alert=True)
        return
    if outcome.decision is Decision.not_open:
        await callback.answer(t(f"claims.already_{claim.status}"), show_alert=True)
        return
    await callback.answer()
    await bot.send_message(user.id, decider_text(outcome.decision, claim))


def decider_text(decision: Decision, claim: ClaimView) -> str:
    post = describe_post(claim.post)
    if decision is Decision.approved:
        return t("claims.decided_approved", name=claim.volunteer_name, post=post)
    if decision is Decision.declined:
        return t("claims.decided_declined", name=claim.volunteer_name, post=post)
    return t("claims.decided_post_held", post=post)


async def remove_buttons(callback: CallbackQuery) -> None:
    if isinstance(callback.message, Message) and callback.message.reply_markup is not None:
        with suppress(TelegramBadRequest):
            await callback.message.edit_reply_markup(reply_markup=None)


@router.callback_query(ClaimWithdraw.filter())
async def claim_withdrawn(
    callback: CallbackQuery, callback_data: ClaimWithdraw, session: AsyncSession
) -> None:
    result, claim = await withdraw_claim(session, callback_data.claim_id, callback.from_user.id)
    if result is Withdrawal.not_yours or claim is None:
        await callback.answer(t("claims.not_your_claim"), show_alert=True)
        return
    await remove_buttons(callback)
    if result is Withdrawal.not_open:
        await callback.answer(t(f"claims.already_{claim.status}"), show_alert=True)
        return
    await callback.answer()
    if isinstance(callback.message, Message):
        await callback.message.answer(t("claims.withdrawn", post=describe_post(claim.post)))
