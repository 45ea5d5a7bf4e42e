"""/console: a one-time link to the command centre's web console, in private chat, for
members holding a post and the command centre. Asking again ends every earlier session."""

from datetime import timedelta

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.filters import Command
from aiogram.types import LinkPreviewOptions, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.i18n import t
from handlers.filters import Matches
from models.access import scope_of
from models.console_auth import issue_link
from models.org import Member
from models.registration import get_or_create_member


async def console_link(
    message: Message, session: AsyncSession, config: Config, member: Member | None
) -> None:
    user = message.from_user
    if user is None:
        return
    if not config.console.enabled:
        await message.answer(t("console.disabled"))
        return
    scope = await scope_of(session, user.id, config.admins.telegram_ids)
    if scope.is_empty:
        await message.answer(t("console.no_post"))
        return
    if member is None:
        # An admin who never registered a post still needs a member record to log in.
        member = await get_or_create_member(
            session, user.id, user.full_name, None, None, user.username
        )
    minutes = config.console.link_minutes
    token = await issue_link(session, member, timedelta(minutes=minutes))
    url = f"{config.console.base_url}/console/login?token={token}"
    # No preview: Telegram's preview fetcher must not be the one to open the link.
    await message.answer(
        t("console.link", url=url, minutes=int(minutes)),
        link_preview_options=LinkPreviewOptions(is_disabled=True),
    )


def setup() -> Router:
    router = Router(name=__name__)
    router.message.filter(Matches(F.chat.type == ChatType.PRIVATE))
    router.message.register(console_link, Command("console"))
    return router
