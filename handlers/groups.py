"""Volunteers' group chats: the bot added or removed, /bind and /unbind, and a group's move
to a supergroup. A group is shown counts and statuses only (PRODUCT.md §4)."""

from contextlib import suppress

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import (
    JOIN_TRANSITION,
    LEAVE_TRANSITION,
    ChatMemberUpdatedFilter,
    Command,
    CommandObject,
)
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, ChatMemberUpdated, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.i18n import t
from handlers.filters import Matches
from handlers.ids import RowId
from models.access import scope_of
from models.groups import (
    Binding,
    BindOutcome,
    BindResult,
    UnbindResult,
    bind_group,
    binding_of,
    forget_group,
    migrate_group,
    nodes_held_by,
    record_group,
    unbind_group,
)
from models.posts import node_by_path
from models.text import has_control_characters, shown

IN_GROUP = Matches(F.chat.type.in_({ChatType.GROUP, ChatType.SUPERGROUP}))
IN_PRIVATE = Matches(F.chat.type == ChatType.PRIVATE)


class BindPick(CallbackData, prefix="gbind"):
    # Out of range (a forged button): the filter does not match, the button is stale.
    node_id: RowId


def bound_text(binding: Binding) -> str:
    return t("groups.bound", path=binding.node.path, vacant=binding.vacant_posts)


async def bot_added(event: ChatMemberUpdated, session: AsyncSession) -> None:
    await record_group(session, event.chat.id, event.chat.title or "")
    await event.answer(t("groups.added"))


async def bot_removed(event: ChatMemberUpdated, session: AsyncSession) -> None:
    await forget_group(session, event.chat.id, event.from_user.id)


# Telegram posts one service message in each chat when a group becomes a supergroup;
# whichever arrives first moves the binding, the other finds nothing left to move.
async def group_migrated(message: Message, session: AsyncSession) -> None:
    assert message.migrate_to_chat_id is not None  # the filter above
    await migrate_group(session, message.chat.id, message.migrate_to_chat_id)


async def supergroup_created(message: Message, session: AsyncSession) -> None:
    assert message.migrate_from_chat_id is not None  # the filter above
    await migrate_group(session, message.migrate_from_chat_id, message.chat.id)


async def group_command_in_private(message: Message) -> None:
    await message.answer(t("groups.in_group_only"))


async def bind_command(
    message: Message, command: CommandObject, session: AsyncSession, config: Config
) -> None:
    user = message.from_user
    scope = await scope_of(session, user.id, config.admins.telegram_ids) if user else None
    if user is None or scope is None or scope.is_empty:
        await message.answer(t("groups.bind_refused"))
        return
    current = await binding_of(session, message.chat.id)
    if current is not None:
        await message.answer(t("groups.already_bound", path=current.node.path))
        return
    if command.args:
        path = command.args
        node = None if has_control_characters(path) else await node_by_path(session, path)
        if node is None:
            await message.answer(t("path.unknown", path=shown(path.strip())))
            return
        outcome = await bind_group(
            session, message.chat.id, message.chat.title or "", node.id, scope, user.id
        )
        await message.answer(outcome_text(outcome))
        return
    nodes = await nodes_held_by(session, user.id)
    if not nodes:  # an admin holding no post
        await message.answer(t("groups.bind_usage"))
        return
    buttons = InlineKeyboardBuilder()
    for held in nodes:
        buttons.button(text=held.path, callback_data=BindPick(node_id=held.node_id))
    buttons.adjust(1)
    await message.answer(t("groups.bind_choose"), reply_markup=buttons.as_markup())


def outcome_text(outcome: BindOutcome) -> str:
    if outcome.result is BindResult.bound and outcome.binding is not None:
        return bound_text(outcome.binding)
    if outcome.result is BindResult.already_bound and outcome.binding is not None:
        return t("groups.already_bound", path=outcome.binding.node.path)
    return t("groups.bind_forbidden")


async def bind_picked(
    callback: CallbackQuery, callback_data: BindPick, session: AsyncSession, config: Config
) -> None:
    message = callback.message
    if not isinstance(message, Message) or message.chat.type == ChatType.PRIVATE:
        await callback.answer(t("fallback.stale_button"), show_alert=True)
        return
    user = callback.from_user
    # The node id comes from the button: whoever presses it, the press is checked anew.
    scope = await scope_of(session, user.id, config.admins.telegram_ids)
    outcome = await bind_group(
        session, message.chat.id, message.chat.title or "", callback_data.node_id, scope, user.id
    )
    if outcome.result is not BindResult.bound:
        await callback.answer(outcome_text(outcome), show_alert=True)
        return
    await callback.answer()
    with suppress(TelegramBadRequest):  # already edited by a quicker press
        await message.edit_text(outcome_text(outcome))


async def unbind_command(message: Message, session: AsyncSession, config: Config) -> None:
    user = message.from_user
    if user is None:
        await message.answer(t("groups.unbind_refused"))
        return
    scope = await scope_of(session, user.id, config.admins.telegram_ids)
    result, node = await unbind_group(session, message.chat.id, scope, user.id)
    if result is UnbindResult.not_bound or node is None:
        await message.answer(t("groups.not_bound"))
    elif result is UnbindResult.forbidden:
        await message.answer(t("groups.unbind_refused"))
    else:
        await message.answer(t("groups.unbound", path=node.path))


def setup() -> Router:
    """This feature's router, new on every call (a test or a second dispatcher gets its own)."""
    router = Router(name=__name__)
    router.my_chat_member.filter(Matches(F.chat.type.in_({ChatType.GROUP, ChatType.SUPERGROUP})))
    router.my_chat_member.register(bot_added, ChatMemberUpdatedFilter(JOIN_TRANSITION))
    router.my_chat_member.register(bot_removed, ChatMemberUpdatedFilter(LEAVE_TRANSITION))
    router.message.register(group_migrated, IN_GROUP, Matches(F.migrate_to_chat_id))
    router.message.register(supergroup_created, IN_GROUP, Matches(F.migrate_from_chat_id))
    router.message.register(group_command_in_private, IN_PRIVATE, Command("bind", "unbind"))
    router.message.register(bind_command, IN_GROUP, Command("bind"))
    router.callback_query.register(bind_picked, BindPick.filter())
    router.message.register(unbind_command, IN_GROUP, Command("unbind"))
    return router
