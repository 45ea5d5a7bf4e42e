"""A volunteer's claim of a vacant post: the tap in the group issues a claim link for that
volunteer → private chat (directly, or through the link as a deep link): own phone →
confirm → the claim goes to the lead one level up (models.claims queues it)."""

import logging
from contextlib import suppress

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError
from aiogram.filters import CommandObject, CommandStart, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import BaseStorage, StorageKey
from aiogram.types import (
    CallbackQuery,
    Message,
    ReplyKeyboardRemove,
    User,
)
from aiogram.utils.deep_linking import create_deep_link
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.fsm_storage import commit_fsm_writes
from bot.i18n import locale_for_language_code, t
from handlers.actions import ClaimWithdraw
from handlers.contact import confirm_keyboard, contact_keyboard, is_own_contact
from handlers.filters import NOT_A_COMMAND, Matches, private_buttons
from handlers.rendering import describe_post
from handlers.vacancies import VacancyPick
from models.claim_links import (
    Claimable,
    ClaimCheck,
    check_claim_link,
    offer_claim,
    redeem_claim_link,
)
from models.claims import open_claim

logger = logging.getLogger(__name__)

IN_PRIVATE = Matches(F.chat.type == ChatType.PRIVATE)
# ``claim_`` and a claim link's token (deep-link payloads are [A-Za-z0-9_-]{1,64}).
CLAIM_PREFIX = "claim_"
CLAIM_PAYLOAD = r"^claim_[A-Za-z0-9_-]{1,58}$"


class Claiming(StatesGroup):
    waiting_for_contact = State()
    waiting_for_confirmation = State()


class ClaimStep(CallbackData, prefix="claim"):
    confirm: bool


def private_context(storage: BaseStorage, bot: Bot, user: User) -> FSMContext:
    """The conversation in the user's private chat, while the update came from a group."""
    return FSMContext(storage, StorageKey(bot_id=bot.id, chat_id=user.id, user_id=user.id))


REFUSALS = {
    Claimable.group_not_bound: "groups.bind_first",
    Claimable.not_here: "vacancies.not_here",
}


def refusal_text(check: ClaimCheck) -> str:
    return t(REFUSALS.get(check.claimable, f"claims.{check.claimable.value}"))


async def vacancy_picked(
    callback: CallbackQuery,
    callback_data: VacancyPick,
    session: AsyncSession,
    bot: Bot,
    fsm_storage: BaseStorage,
    config: Config,
) -> None:
    user = callback.from_user
    if callback.message is None:  # a button of an inline message: no group to claim in
        await callback.answer(t("groups.bind_first"), show_alert=True)
        return
    offer = await offer_claim(
        session,
        callback.message.chat.id,
        callback_data.post_id,
        user.id,
        max_open_per_member=config.claims.max_open_per_member,
    )
    check, post = offer.check, offer.check.post
    if check.claimable is not Claimable.yes or post is None or offer.token is None:
        await callback.answer(refusal_text(check), show_alert=True)
        return
    # Straight into the private chat when the volunteer has started the bot; otherwise a
    # t.me deep link carrying the claim link, which answerCallbackQuery may open for any
    # button (https://core.telegram.org/bots/api#answercallbackquery).
    state = private_context(fsm_storage, bot, user)
    await state.set_state(Claiming.waiting_for_contact)
    await state.set_data({"token_id": check.token_id})
    # The conversation is the private chat's while this update is the group's, whose lock
    # does not hold the volunteer's answer back: it is written before they are asked.
    await commit_fsm_writes(session)
    try:
        await bot.send_message(
            user.id, t("claims.offered", post=describe_post(post)), reply_markup=contact_keyboard()
        )
    except (TelegramForbiddenError, TelegramBadRequest):
        await state.clear()
        username = (await bot.me()).username or ""
        await callback.answer(url=create_deep_link(username, "start", CLAIM_PREFIX + offer.token))
        return
    await callback.answer(t("claims.continue_in_private"))


async def start_claim(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    state: FSMContext,
    config: Config,
) -> None:
    await state.clear()
    token = (command.args or "").removeprefix(CLAIM_PREFIX)
    user_id = message.from_user.id if message.from_user else 0
    check = await redeem_claim_link(
        session, token, user_id, max_open_per_member=config.claims.max_open_per_member
    )
    if check.claimable is not Claimable.yes or check.post is None:
        await message.answer(refusal_text(check))
        return
    await state.set_state(Claiming.waiting_for_contact)
    await state.set_data({"token_id": check.token_id})
    await message.answer(
        t("claims.offered", post=describe_post(check.post)), reply_markup=contact_keyboard()
    )


async def claim_contact_shared(
    message: Message, state: FSMContext, session: AsyncSession, config: Config
) -> None:
    contact = message.contact
    if contact is None or message.from_user is None or not is_own_contact(message):
        await message.answer(t("claims.not_own_contact"), reply_markup=contact_keyboard())
        return
    data = await state.get_data()
    check = await check_claim_link(
        session,
        int(data.get("token_id") or 0),
        message.from_user.id,
        max_open_per_member=config.claims.max_open_per_member,
    )
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


async def claim_contact_expected(message: Message) -> None:
    await message.answer(t("claims.contact_expected"), reply_markup=contact_keyboard())


async def claim_confirmation_expected(message: Message) -> None:
    await message.answer(t("claims.confirmation_expected"))


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
        int(data.get("token_id") or 0),
        telegram_id=user.id,
        name=user.full_name,
        phone=str(data["phone"]),
        locale=locale_for_language_code(user.language_code, config.i18n.default_locale),
        username=user.username,
        command_centre_ids=config.admins.telegram_ids,
        max_open_per_member=config.claims.max_open_per_member,
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


async def claim_button_out_of_conversation(callback: CallbackQuery) -> None:
    await callback.answer(t("fallback.stale_button"), show_alert=True)


def setup() -> Router:
    """This feature's router, new on every call (a test or a second dispatcher gets its own)."""
    router = Router(name=__name__)
    router.callback_query.register(vacancy_picked, VacancyPick.filter())
    router.message.register(
        start_claim, IN_PRIVATE, CommandStart(deep_link=True, magic=F.args.regexp(CLAIM_PAYLOAD))
    )
    # The conversation's own buttons, in the volunteer's private chat only.
    private = private_buttons(router, ClaimStep)
    router.message.register(
        claim_contact_shared, StateFilter(Claiming.waiting_for_contact), Matches(F.contact)
    )
    router.message.register(
        claim_contact_expected,
        StateFilter(Claiming.waiting_for_contact),
        NOT_A_COMMAND,
    )
    router.message.register(
        claim_confirmation_expected,
        StateFilter(Claiming.waiting_for_confirmation),
        NOT_A_COMMAND,
    )
    private.callback_query.register(
        claim_confirmed, StateFilter(Claiming.waiting_for_confirmation), ClaimStep.filter()
    )
    private.callback_query.register(claim_button_out_of_conversation, ClaimStep.filter())
    return router
