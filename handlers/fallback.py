"""What nobody else handled: an unknown command, or text outside any conversation."""

from aiogram import F, Router
from aiogram.types import CallbackQuery, Message

from bot.i18n import t

router = Router(name=__name__)


@router.message(F.chat.type == "private", F.text.startswith("/"))
async def unknown_command(message: Message) -> None:
    await message.answer(t("fallback.unknown_command"))


@router.message(F.chat.type == "private")
async def outside_conversation(message: Message) -> None:
    await message.answer(t("fallback.no_conversation"))


@router.callback_query()
async def stale_button(callback: CallbackQuery) -> None:
    # A button of an old message whose conversation has ended or changed.
    await callback.answer(t("fallback.stale_button"), show_alert=True)
