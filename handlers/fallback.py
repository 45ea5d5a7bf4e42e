"""What nobody else handled: an unknown command, or text outside any conversation."""

from aiogram import F, Router
from aiogram.types import CallbackQuery, Message

from bot.i18n import t
from handlers.filters import Matches


async def unknown_command(message: Message) -> None:
    await message.answer(t("fallback.unknown_command"))


async def outside_conversation(message: Message) -> None:
    await message.answer(t("fallback.no_conversation"))


async def stale_button(callback: CallbackQuery) -> None:
    # A button of an old message whose conversation has ended or changed.
    await callback.answer(t("fallback.stale_button"), show_alert=True)


def setup() -> Router:
    """This feature's router, new on every call (a test or a second dispatcher gets its own)."""
    router = Router(name=__name__)
    router.message.register(
        unknown_command, Matches(F.chat.type == "private"), Matches(F.text.startswith("/"))
    )
    router.message.register(outside_conversation, Matches(F.chat.type == "private"))
    router.callback_query.register(stale_button)
    return router
