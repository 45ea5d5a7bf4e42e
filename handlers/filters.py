from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.filters import Filter, or_f
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, TelegramObject, User
from aiogram.utils.magic_filter import MagicFilter

from bot.config import Config
from bot.i18n import t


class IsAdmin(Filter):
    """The county command centre: Telegram ids listed under ``[admins]``."""

    async def __call__(
        self, event: TelegramObject, event_from_user: User | None, config: Config
    ) -> bool:
        return event_from_user is not None and config.is_admin(event_from_user.id)


class InPrivateChat(Filter):
    """A button pressed on a message of a private chat (not in a group, nor on an inline
    message, which has no chat the bot knows)."""

    async def __call__(self, callback: CallbackQuery) -> bool:
        message = callback.message
        return message is not None and message.chat.type == ChatType.PRIVATE


async def private_button_elsewhere(callback: CallbackQuery) -> None:
    await callback.answer(t("button.private_only"), show_alert=True)


def private_buttons(router: Router, *kinds: type[CallbackData]) -> Router:
    """A child of ``router`` for buttons that show or change one person's own data, which
    the bot puts in private chats only. A modified client can send any callback data from a
    group; a press of any of ``kinds`` outside a private chat is refused with an alert
    before any handler runs, and the child's handlers see private chats alone."""
    router.callback_query.register(
        private_button_elsewhere, ~InPrivateChat(), or_f(*(kind.filter() for kind in kinds))
    )
    private = Router(name=f"{router.name}.private")
    private.callback_query.filter(InPrivateChat())
    router.include_router(private)
    return private


class Matches(Filter):
    """A magic filter (``F.…``) checked on the event loop. aiogram runs every filter that is
    not a coroutine function in a worker thread (``asyncio.to_thread`` in
    ``CallableObject.call``), so a bare ``F.chat.type == "private"`` costs a hand-over to the
    thread and back each time an update meets it: several per update, more than the check.

    Passes when the magic filter's result is truthy, as aiogram's own handling does."""

    def __init__(self, magic: MagicFilter) -> None:
        self.magic = magic

    async def __call__(self, event: TelegramObject) -> bool:
        return bool(self.magic.resolve(event))


# Text typed in a conversation, as opposed to a command, which goes to its own handler.
NOT_A_COMMAND = Matches(~F.text.startswith("/"))
