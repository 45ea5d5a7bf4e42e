"""Registration by invite link: /start <token> → share own phone → confirm → bound.
Also /me (my posts) and /leave (give one up)."""

from contextlib import suppress

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject, CommandStart, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import (
    CallbackQuery,
    Message,
    ReplyKeyboardRemove,
)
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.i18n import locale_for_language_code, t
from handlers.contact import confirm_keyboard, contact_keyboard, is_own_contact
from handlers.directory import MyLeadOpen
from handlers.filters import NOT_A_COMMAND, Matches, private_buttons
from handlers.ids import RowId
from handlers.rendering import answer_in_parts, describe_post, post_button_text
from models.invites import InviteStatus, check_invite, lookup_invite
from models.org import Member
from models.posts import posts_of
from models.registration import RegistrationResult, register_by_invite
from models.resignation import leave_post

# Deep-link payloads are [A-Za-z0-9_-]{1,64}.
INVITE_PAYLOAD = r"^[A-Za-z0-9_-]{1,64}$"


class Registration(StatesGroup):
    waiting_for_contact = State()
    waiting_for_confirmation = State()


class RegistrationStep(CallbackData, prefix="reg"):
    confirm: bool


class LeaveStep(CallbackData, prefix="leave"):
    post_id: RowId
    confirm: bool


class LeaveCancel(CallbackData, prefix="leave_no"):
    pass


async def start_with_invite(
    message: Message, command: CommandObject, session: AsyncSession, state: FSMContext
) -> None:
    await state.clear()
    lookup = await lookup_invite(session, command.args or "")
    if lookup.status is not InviteStatus.valid or lookup.post is None:
        await message.answer(t(f"invite.{lookup.status.value}"))
        return
    await state.set_state(Registration.waiting_for_contact)
    await state.update_data(invite_id=lookup.invite_id)
    await message.answer(
        t("registration.post_offered", post=describe_post(lookup.post)),
        reply_markup=contact_keyboard(),
    )


async def contact_shared(message: Message, state: FSMContext, session: AsyncSession) -> None:
    contact = message.contact
    if contact is None or not is_own_contact(message):
        await message.answer(t("registration.not_own_contact"), reply_markup=contact_keyboard())
        return
    data = await state.get_data()
    lookup = await check_invite(session, int(data["invite_id"]))
    if lookup.status is not InviteStatus.valid or lookup.post is None:
        await state.clear()
        await message.answer(t(f"invite.{lookup.status.value}"), reply_markup=ReplyKeyboardRemove())
        return
    await state.update_data(phone=contact.phone_number)
    await state.set_state(Registration.waiting_for_confirmation)
    await message.answer(t("registration.phone_received"), reply_markup=ReplyKeyboardRemove())
    await message.answer(
        t("registration.confirm", post=describe_post(lookup.post), phone=contact.phone_number),
        reply_markup=confirm_keyboard(
            RegistrationStep(confirm=True), RegistrationStep(confirm=False)
        ),
    )


async def contact_expected(message: Message) -> None:
    await message.answer(t("registration.contact_expected"), reply_markup=contact_keyboard())


async def confirmation_expected(message: Message) -> None:
    await message.answer(t("registration.confirmation_expected"))


async def registration_decided(
    callback: CallbackQuery,
    callback_data: RegistrationStep,
    state: FSMContext,
    session: AsyncSession,
    bot: Bot,
    config: Config,
) -> None:
    data = await state.get_data()
    await state.clear()
    await callback.answer()
    if callback.message is not None:
        await bot.edit_message_reply_markup(
            chat_id=callback.from_user.id, message_id=callback.message.message_id
        )
    if not callback_data.confirm:
        await bot.send_message(callback.from_user.id, t("registration.cancelled"))
        return
    user = callback.from_user
    outcome = await register_by_invite(
        session,
        int(data["invite_id"]),
        telegram_id=user.id,
        name=user.full_name,
        phone=str(data["phone"]),
        # Remembered so that messages the member receives on others' doings (the lead
        # above told of a registration, say) come in the member's language too.
        locale=locale_for_language_code(user.language_code, config.i18n.default_locale),
        username=user.username,
        command_centre_ids=config.admins.telegram_ids,
    )
    if outcome.result is RegistrationResult.invite_invalid or outcome.post is None:
        await bot.send_message(user.id, t(f"invite.{outcome.invite_status.value}"))
        return
    post_text = describe_post(outcome.post)
    if outcome.result is RegistrationResult.held_for_admin:
        await bot.send_message(user.id, t("registration.held_for_admin", post=post_text))
        return
    await bot.send_message(user.id, t("registration.bound", post=post_text))


async def registration_button_out_of_conversation(callback: CallbackQuery) -> None:
    await callback.answer(t("fallback.stale_button"), show_alert=True)


async def my_posts(message: Message, session: AsyncSession, member: Member | None) -> None:
    posts = await posts_of(session, member.id) if member else []
    if not posts:
        await message.answer(t("me.none"))
        return
    lines = "\n".join(f"• {describe_post(post)}" for post in posts)
    buttons = InlineKeyboardBuilder()
    buttons.button(text=t("mylead.button"), callback_data=MyLeadOpen())
    await answer_in_parts(
        message, t("me.posts", count=len(posts)) + "\n" + lines, buttons.as_markup()
    )


async def choose_post_to_leave(
    message: Message, session: AsyncSession, member: Member | None
) -> None:
    posts = await posts_of(session, member.id) if member else []
    if not posts:
        await message.answer(t("me.none"))
        return
    buttons = InlineKeyboardBuilder()
    for post in posts:
        buttons.button(
            text=post_button_text(post),
            callback_data=LeaveStep(post_id=post.post_id, confirm=False),
        )
    buttons.button(text=t("button.cancel"), callback_data=LeaveCancel())
    buttons.adjust(1)
    await message.answer(t("leave.choose"), reply_markup=buttons.as_markup())


async def confirm_leaving(
    callback: CallbackQuery, callback_data: LeaveStep, session: AsyncSession, member: Member | None
) -> None:
    posts = {post.post_id: post for post in await posts_of(session, member.id)} if member else {}
    post = posts.get(callback_data.post_id)
    if post is None:
        await callback.answer(t("leave.not_yours"), show_alert=True)
        return
    await callback.answer()
    await remove_buttons(callback)
    if callback.message is not None:
        await callback.message.answer(
            t("leave.confirm", post=describe_post(post)),
            reply_markup=confirm_keyboard(
                LeaveStep(post_id=post.post_id, confirm=True), LeaveCancel(), t("leave.yes")
            ),
        )


async def leave_cancelled(callback: CallbackQuery) -> None:
    await callback.answer()
    await remove_buttons(callback)
    if callback.message is not None:
        await callback.message.answer(t("leave.cancelled"))


async def remove_buttons(callback: CallbackQuery) -> None:
    """The choice is made: its buttons go, so that an old one is not pressed later."""
    if isinstance(callback.message, Message) and callback.message.reply_markup is not None:
        with suppress(TelegramBadRequest):
            await callback.message.edit_reply_markup(reply_markup=None)


async def leave(
    callback: CallbackQuery,
    callback_data: LeaveStep,
    session: AsyncSession,
    member: Member | None,
    bot: Bot,
    config: Config,
) -> None:
    if member is None:
        await callback.answer(t("leave.not_yours"), show_alert=True)
        return
    post = await leave_post(
        session,
        callback_data.post_id,
        member.id,
        callback.from_user.id,
        command_centre_ids=config.admins.telegram_ids,
    )
    if post is None:
        await callback.answer(t("leave.not_yours"), show_alert=True)
        return
    await callback.answer()
    await remove_buttons(callback)
    await bot.send_message(callback.from_user.id, t("leave.done", post=describe_post(post)))


def setup() -> Router:
    """This feature's router, new on every call (a test or a second dispatcher gets its own)."""
    router = Router(name=__name__)
    router.message.filter(Matches(F.chat.type == "private"))
    router.message.register(
        start_with_invite, CommandStart(deep_link=True, magic=F.args.regexp(INVITE_PAYLOAD))
    )
    router.message.register(
        contact_shared, StateFilter(Registration.waiting_for_contact), Matches(F.contact)
    )
    router.message.register(
        contact_expected,
        StateFilter(Registration.waiting_for_contact),
        NOT_A_COMMAND,
    )
    router.message.register(
        confirmation_expected,
        StateFilter(Registration.waiting_for_confirmation),
        NOT_A_COMMAND,
    )
    router.message.register(my_posts, Command("me"))
    router.message.register(choose_post_to_leave, Command("leave"))
    # The member's own registration and posts: private chat only.
    private = private_buttons(router, RegistrationStep, LeaveStep, LeaveCancel)
    private.callback_query.register(
        registration_decided,
        StateFilter(Registration.waiting_for_confirmation),
        RegistrationStep.filter(),
    )
    private.callback_query.register(
        registration_button_out_of_conversation, RegistrationStep.filter()
    )
    private.callback_query.register(confirm_leaving, LeaveStep.filter(F.confirm.is_(False)))
    private.callback_query.register(leave, LeaveStep.filter(F.confirm.is_(True)))
    private.callback_query.register(leave_cancelled, LeaveCancel.filter())
    return router
