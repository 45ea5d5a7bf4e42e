"""The steps registration and claiming share: share one's own phone, then confirm."""

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup, KeyboardButton, Message, ReplyKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.i18n import t


def contact_keyboard() -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text=t("registration.share_button"), request_contact=True)]],
        resize_keyboard=True,
        one_time_keyboard=True,
    )


def is_own_contact(message: Message) -> bool:
    """Only the sender's own contact counts, not a forwarded card of someone else."""
    contact = message.contact
    return (
        contact is not None
        and message.from_user is not None
        and contact.user_id == message.from_user.id
    )


def confirm_keyboard(
    confirm: CallbackData, cancel: CallbackData, confirm_text: str | None = None
) -> InlineKeyboardMarkup:
    buttons = InlineKeyboardBuilder()
    buttons.button(text=confirm_text or t("button.confirm"), callback_data=confirm)
    buttons.button(text=t("button.cancel"), callback_data=cancel)
    return buttons.as_markup()
