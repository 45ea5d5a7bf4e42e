"""Telling other members about something, each in their own language, through the outbox
(paced, retried, and kept across a restart like every message that is not a reply)."""

from aiogram.utils.i18n import I18n
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.i18n import LOCALES, t
from models.outbox import OutgoingMessage, enqueue
from models.posts import Recipient
from scheduler.sender import OutboxSender


def admins(config: Config) -> list[Recipient]:
    return [Recipient(telegram_id, None) for telegram_id in config.admins.telegram_ids]


async def tell(
    session: AsyncSession,
    outbox_sender: OutboxSender | None,
    recipients: list[Recipient],
    key: str,
    **params: object,
) -> None:
    """Queue ``key`` for each recipient once, rendered in the recipient's language, and
    commit. A parameter may be a function of no arguments: it is called in each
    recipient's language (a post's title, say)."""
    i18n = I18n.get_current(no_error=False)
    messages: dict[int, OutgoingMessage] = {}
    for recipient in recipients:
        if recipient.telegram_id in messages:
            continue
        locale = recipient.locale if recipient.locale in LOCALES else i18n.default_locale
        with i18n.use_locale(locale):
            rendered = {
                name: value() if callable(value) else value for name, value in params.items()
            }
            text = t(key, **rendered)
        messages[recipient.telegram_id] = OutgoingMessage(
            chat_id=recipient.telegram_id, text=text, source=key, priority=1
        )
    await enqueue(session, list(messages.values()))
    await session.commit()
    if outbox_sender is not None:
        outbox_sender.wake()
