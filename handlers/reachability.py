"""A member who blocks the bot in private chat is unreachable at once, and the lead above is
told; one who unblocks it is reachable again. Nobody silently drops out (漏管)."""

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.filters import JOIN_TRANSITION, LEAVE_TRANSITION, ChatMemberUpdatedFilter
from aiogram.types import ChatMemberUpdated
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from handlers.filters import Matches
from models.members import set_reachable
from models.org import Member


async def bot_blocked(
    event: ChatMemberUpdated, session: AsyncSession, member: Member | None, config: Config
) -> None:
    if member is not None:
        await set_reachable(session, member, False, config.admins.telegram_ids)


async def bot_unblocked(
    event: ChatMemberUpdated, session: AsyncSession, member: Member | None, config: Config
) -> None:
    if member is not None:
        await set_reachable(session, member, True, config.admins.telegram_ids)


def setup() -> Router:
    """This feature's router, new on every call (a test or a second dispatcher gets its own)."""
    router = Router(name=__name__)
    router.my_chat_member.filter(Matches(F.chat.type == ChatType.PRIVATE))
    router.my_chat_member.register(bot_blocked, ChatMemberUpdatedFilter(LEAVE_TRANSITION))
    router.my_chat_member.register(bot_unblocked, ChatMemberUpdatedFilter(JOIN_TRANSITION))
    return router
