"""What the report handlers share: the caller as a reporter, showing a view in the pressed
message, the unit's sheet, and a refusal in words."""

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.i18n import t
from handlers.report_views import sheet_keyboard, sheet_text
from models.access import scope_of
from models.org import Member
from models.refusals import Refused
from models.reports import Reporter, unit_sheet


async def reporter_of(
    telegram_id: int, member: Member | None, session: AsyncSession, config: Config
) -> Reporter | None:
    """The caller as a reporter, or None when they hold no post at all."""
    scope = await scope_of(session, telegram_id, config.admins.telegram_ids)
    if scope.is_empty:
        return None
    return Reporter(telegram_id, member.id if member is not None else None, scope)


async def show(
    callback: CallbackQuery, bot: Bot, text: str, markup: InlineKeyboardMarkup | None
) -> None:
    """The pressed message becomes ``text``; a message too old to edit gets a new one."""
    message = callback.message
    if not isinstance(message, Message):
        await bot.send_message(callback.from_user.id, text, reply_markup=markup)
        return
    try:
        await message.edit_text(text, reply_markup=markup)
    except TelegramBadRequest as error:
        # Pressing a button that shows what is already there.
        if "not modified" not in str(error):
            raise


async def sheet_view(
    session: AsyncSession,
    reporter: Reporter,
    round_id: int,
    unit_id: int,
    config: Config,
    header: str | None = None,
    page: int = 0,
) -> tuple[str, InlineKeyboardMarkup]:
    """The unit's sheet as text and buttons; ``Refused`` when it is not the reporter's."""
    sheet = await unit_sheet(session, reporter, round_id, unit_id)
    timezone = config.reports.timezone or config.i18n.timezone
    return sheet_text(sheet, timezone, header), sheet_keyboard(sheet, page)


async def refuse(callback: CallbackQuery, refused: Refused) -> None:
    await callback.answer(t(refused.key, **refused.params), show_alert=True)
