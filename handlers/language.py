"""/lang: each member picks Simplified Chinese or English."""

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import LOCALES, t
from handlers.filters import Matches
from models.members import set_locale

LANGUAGE_NAMES = {"zh_Hans": "简体中文", "en": "English"}


class LanguageChoice(CallbackData, prefix="lang"):
    locale: str


def language_keyboard() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for locale in LOCALES:
        builder.button(text=LANGUAGE_NAMES[locale], callback_data=LanguageChoice(locale=locale))
    return builder.as_markup()


async def choose_language(message: Message) -> None:
    await message.answer(t("lang.choose"), reply_markup=language_keyboard())


async def language_chosen(
    callback: CallbackQuery, callback_data: LanguageChoice, session: AsyncSession, i18n: I18n
) -> None:
    if callback_data.locale not in LOCALES:
        await callback.answer(t("lang.unknown"), show_alert=True)
        return
    user = callback.from_user
    await set_locale(session, user.id, user.full_name, callback_data.locale)
    with i18n.use_locale(callback_data.locale):
        text = t("lang.set", language=LANGUAGE_NAMES[callback_data.locale])
        await callback.answer()
        if callback.message is not None:
            await callback.message.answer(text)


def setup() -> Router:
    """This feature's router, new on every call (a test or a second dispatcher gets its own)."""
    router = Router(name=__name__)
    router.message.filter(Matches(F.chat.type == "private"))
    router.message.register(choose_language, Command("lang"))
    router.callback_query.register(language_chosen, LanguageChoice.filter())
    return router
