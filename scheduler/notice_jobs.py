"""The clock's work for notices: fan out scheduled ones, keep the author's progress message
current, and run the follow-up (``models.notice_followup``) that reminds and escalates."""

import logging
from datetime import timedelta

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.utils.i18n import I18n
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Config
from bot.i18n import t
from models.notice_delivery import dispatch_due_notices, dispatched_with_open_progress
from models.notice_followup import remind_and_escalate as follow_up
from models.notices import source_of
from models.outbox.table import OutboxStatus, delivery_counts

logger = logging.getLogger(__name__)


async def dispatch_scheduled_notices(
    session_factory: async_sessionmaker[AsyncSession], config: Config
) -> int:
    async with session_factory() as session:
        due = await dispatch_due_notices(session, config.admins.telegram_ids)
    if due:
        logger.info("dispatched scheduled notices %s", due)
    return len(due)


def progress_text(notice_id: int, counts: dict[OutboxStatus, int], final: bool) -> str:
    total = sum(counts.values())
    key = "notice.progress_final" if final else "notice.progress"
    return t(
        key,
        id=notice_id,
        sent=counts[OutboxStatus.sent],
        total=total,
        unreachable=counts[OutboxStatus.unreachable],
        failed=counts[OutboxStatus.failed],
    )


async def refresh_progress(
    session_factory: async_sessionmaker[AsyncSession], bot: Bot, i18n: I18n
) -> None:
    """Edits the author's own message (a direct reply's live progress, not a new message)."""
    async with session_factory() as session:
        for notice in await dispatched_with_open_progress(session):
            counts = await delivery_counts(session, source_of(notice.id))
            final = counts[OutboxStatus.pending] + counts[OutboxStatus.sending] == 0
            with i18n.context(), i18n.use_locale(i18n.default_locale):
                text = progress_text(notice.id, counts, final)
            try:
                await bot.edit_message_text(
                    text=text,
                    chat_id=notice.progress_chat_id,
                    message_id=notice.progress_message_id,
                )
            except TelegramAPIError as error:
                # "message is not modified" when nothing changed since the last edit.
                logger.debug("progress of notice %s: %s", notice.id, error)
            if final:
                notice.progress_final = True
        await session.commit()


async def remind_and_escalate(
    session_factory: async_sessionmaker[AsyncSession], config: Config
) -> int:
    async with session_factory() as session:
        return await follow_up(
            session,
            timedelta(minutes=config.notices.remind_after_min),
            timedelta(minutes=config.notices.escalate_after_min),
            config.admins.telegram_ids,
        )
