"""The clock's work for notices: fan out scheduled ones, keep the author's progress
message current, remind those who have not acknowledged, then tell their lead above."""

import logging
from collections import defaultdict
from datetime import timedelta

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.utils.i18n import I18n
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Config
from bot.i18n import LOCALES, t
from models.base import utcnow
from models.notices import (
    Notice,
    ack_markup,
    dispatch_due_notices,
    dispatched_with_open_progress,
    holders_at,
    notices_to_escalate,
    notices_to_remind,
    source_of,
    stragglers,
)
from models.outbox import OutboxStatus, OutgoingMessage, delivery_counts, enqueue

logger = logging.getLogger(__name__)


async def dispatch_scheduled_notices(session_factory: async_sessionmaker[AsyncSession]) -> int:
    async with session_factory() as session:
        due = await dispatch_due_notices(session)
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
    session_factory: async_sessionmaker[AsyncSession], i18n: I18n, config: Config
) -> None:
    remind_after = timedelta(minutes=config.notices.remind_after_min)
    escalate_after = timedelta(minutes=config.notices.escalate_after_min)
    async with session_factory() as session:
        for notice in await notices_to_remind(session, remind_after):
            await _remind(session, i18n, notice)
        for notice in await notices_to_escalate(session, escalate_after):
            await _escalate(session, i18n, config, notice)


def _in(i18n: I18n, locale: str | None) -> str:
    return locale if locale in LOCALES else i18n.default_locale


async def _remind(session: AsyncSession, i18n: I18n, notice: Notice) -> None:
    messages = []
    for straggler in await stragglers(session, notice.id):
        with i18n.context(), i18n.use_locale(_in(i18n, straggler.locale)):
            text = t("notice.reminder", id=notice.id)
            label = t("notice.ack_button")
        messages.append(
            OutgoingMessage(
                chat_id=straggler.telegram_id,
                member_id=straggler.member_id,
                text=text,
                reply_markup=ack_markup(notice.id, label),
                dedupe_key=f"{source_of(notice.id)}:remind:{straggler.member_id}",
                source=f"{source_of(notice.id)}:remind",
            )
        )
    await enqueue(session, messages)
    notice.reminded_at = utcnow()
    await session.commit()


async def _escalate(session: AsyncSession, i18n: I18n, config: Config, notice: Notice) -> None:
    late = await stragglers(session, notice.id)
    parents = {straggler.parent_id for straggler in late if straggler.parent_id is not None}
    superiors = await holders_at(session, parents)
    by_superior: dict[tuple[int, str | None], list[str]] = defaultdict(list)
    for straggler in late:
        above = superiors.get(straggler.parent_id, []) if straggler.parent_id else []
        if not above:
            # Zone posts answer to the command centre, as do posts whose lead above is vacant.
            above = [(admin_id, None) for admin_id in config.admins.telegram_ids]
        for superior in above:
            by_superior[superior].append(f"{straggler.name}（{straggler.path}）")
    messages = []
    for (telegram_id, locale), names in by_superior.items():
        with i18n.context(), i18n.use_locale(_in(i18n, locale)):
            text = t(
                "notice.escalation",
                id=notice.id,
                count=len(names),
                names="\n".join(f"• {name}" for name in names[:50]),
            )
        messages.append(
            OutgoingMessage(
                chat_id=telegram_id,
                text=text,
                dedupe_key=f"{source_of(notice.id)}:escalate:{telegram_id}",
                source=f"{source_of(notice.id)}:escalate",
            )
        )
    await enqueue(session, messages)
    notice.escalated_at = utcnow()
    await session.commit()
