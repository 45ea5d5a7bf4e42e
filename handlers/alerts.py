"""/alert (特殊情况立即上报): any member tells the leads above at once, in words, a photo or a
voice message; and the "I'll handle it" button on every alert."""

import html

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.i18n import t
from handlers.actions import AlertAck
from handlers.filters import NOT_A_COMMAND, Matches, private_buttons
from handlers.ids import RowId
from handlers.rendering import post_button_text
from models.alert_followup import Acknowledged, acknowledge_alert
from models.alerts import AlertMedia, AlertRefused, MemberAlert, raise_member_alert
from models.org import Member
from models.posts import posts_of


class Alerting(StatesGroup):
    post = State()
    content = State()


class AlertPost(CallbackData, prefix="alpost"):
    post_id: RowId


async def start_alert(
    message: Message,
    command: CommandObject,
    state: FSMContext,
    session: AsyncSession,
    config: Config,
    member: Member | None,
) -> None:
    await state.clear()
    posts = await posts_of(session, member.id) if member else []
    if member is None or not posts:
        await message.answer(t("alert.no_post"))
        return
    text = (command.args or "").strip() or None
    if len(posts) == 1:
        if text:
            await _raise(message, state, session, config, member, posts[0].post_id, text=text)
            return
        await state.set_state(Alerting.content)
        await state.update_data(post_id=posts[0].post_id)
        await message.answer(t("alert.ask_content"))
        return
    await state.set_state(Alerting.post)
    await state.update_data(text=text)
    buttons = InlineKeyboardBuilder()
    for post in posts:
        buttons.button(text=post_button_text(post), callback_data=AlertPost(post_id=post.post_id))
    buttons.adjust(1)
    await message.answer(t("alert.ask_post"), reply_markup=buttons.as_markup())


async def post_chosen(
    callback: CallbackQuery,
    callback_data: AlertPost,
    state: FSMContext,
    session: AsyncSession,
    config: Config,
    member: Member | None,
) -> None:
    held = {post.post_id for post in await posts_of(session, member.id)} if member else set()
    if member is None or callback_data.post_id not in held:
        await callback.answer(t("alert.post_gone"), show_alert=True)
        return
    await callback.answer()
    if not isinstance(callback.message, Message):
        return
    await callback.message.edit_reply_markup(reply_markup=None)
    text = (await state.get_data()).get("text")
    if text:
        await _raise(callback.message, state, session, config, member, callback_data.post_id, text)
        return
    await state.set_state(Alerting.content)
    await state.update_data(post_id=callback_data.post_id)
    await callback.message.answer(t("alert.ask_content"))


async def text_given(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    config: Config,
    member: Member | None,
) -> None:
    post_id = (await state.get_data()).get("post_id")
    if member is None or not isinstance(post_id, int):
        await state.clear()
        await message.answer(t("alert.no_post"))
        return
    await _raise(message, state, session, config, member, post_id, text=message.text)


def media_of(message: Message) -> AlertMedia | None:
    """What an alert can carry besides words, sent on as it is with its caption."""
    if message.photo:
        return AlertMedia.photo
    if message.voice:
        return AlertMedia.voice
    if message.video:
        return AlertMedia.video
    if message.document:
        return AlertMedia.document
    return None


async def media_given(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    config: Config,
    member: Member | None,
) -> None:
    media = media_of(message)
    post_id = (await state.get_data()).get("post_id")
    if media is None:
        await message.answer(t("alert.content_unsupported"))
        return
    if member is None or not isinstance(post_id, int):
        await state.clear()
        await message.answer(t("alert.no_post"))
        return
    alert = MemberAlert(
        text=message.caption,
        media=media,
        from_chat_id=message.chat.id,
        message_id=message.message_id,
    )
    await _send(message, state, session, config, member, post_id, alert)


async def _raise(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    config: Config,
    member: Member,
    post_id: int,
    text: str | None,
) -> None:
    await _send(message, state, session, config, member, post_id, MemberAlert(text=text))


async def _send(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    config: Config,
    member: Member,
    post_id: int,
    alert: MemberAlert,
) -> None:
    await state.clear()
    try:
        raised = await raise_member_alert(
            session,
            member_id=member.id,
            post_id=post_id,
            alert=alert,
            command_centre=config.admins.telegram_ids,
        )
    except AlertRefused:
        await message.answer(t("alert.post_gone"))
        return
    if raised.to_command_centre:
        await message.answer(t("alert.sent_to_command_centre", id=raised.alert_id))
    else:
        await message.answer(t("alert.sent", id=raised.alert_id, count=raised.recipients))


async def acknowledged(
    callback: CallbackQuery, callback_data: AlertAck, session: AsyncSession, config: Config
) -> None:
    user = callback.from_user
    outcome = await acknowledge_alert(
        session, callback_data.alert_id, user.id, user.full_name, config.admins.telegram_ids
    )
    if outcome.outcome is Acknowledged.refused:
        await callback.answer(t("alert.not_yours"), show_alert=True)
        return
    if outcome.outcome is Acknowledged.missing:
        await callback.answer(t("fallback.stale_button"), show_alert=True)
        return
    if outcome.outcome is Acknowledged.taken:
        await callback.answer(t("alert.acked", id=callback_data.alert_id))
    else:
        # Popups are plain text: the name goes in as it is.
        text = t("alert.already_taken", id=callback_data.alert_id, name=outcome.by_name or "—")
        await callback.answer(html.unescape(text), show_alert=True)
    if isinstance(callback.message, Message) and callback.message.reply_markup is not None:
        await callback.message.edit_reply_markup(reply_markup=None)


async def content_expected(message: Message) -> None:
    await message.answer(t("alert.content_unsupported"))


async def post_expected(message: Message) -> None:
    await message.answer(t("alert.use_buttons"))


def setup() -> Router:
    """This feature's router, new on every call (a test or a second dispatcher gets its own)."""
    router = Router(name=__name__)
    router.message.filter(Matches(F.chat.type == "private"))
    router.message.register(start_alert, Command("alert"))
    router.message.register(post_expected, StateFilter(Alerting.post), NOT_A_COMMAND)
    router.message.register(
        text_given, StateFilter(Alerting.content), Matches(F.text), NOT_A_COMMAND
    )
    router.message.register(
        media_given,
        StateFilter(Alerting.content),
        Matches(F.photo | F.voice | F.video | F.document),
    )
    router.message.register(content_expected, StateFilter(Alerting.content), Matches(~F.text))
    # Alerts reach people in private chats only; a press from a group is forged.
    private = private_buttons(router, AlertAck, AlertPost)
    private.callback_query.register(post_chosen, StateFilter(Alerting.post), AlertPost.filter())
    private.callback_query.register(acknowledged, AlertAck.filter())
    return router
