"""Members: the people who use the bot, whatever posts they hold."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.org import Member
from models.outbox.reachability import mark_unreachable


async def member_by_telegram_id(session: AsyncSession, telegram_id: int) -> Member | None:
    return await session.scalar(select(Member).where(Member.telegram_id == telegram_id))


async def set_locale(session: AsyncSession, telegram_id: int, name: str, locale: str) -> Member:
    """Remember the member's language; someone not yet registered gets a member record."""
    member = await member_by_telegram_id(session, telegram_id)
    if member is None:
        member = Member(telegram_id=telegram_id, name=name, locale=locale, reachable=True)
        session.add(member)
    else:
        member.locale = locale
    await session.commit()
    return member


async def set_reachable(
    session: AsyncSession, member: Member, reachable: bool, command_centre: list[int]
) -> None:
    """Record that the member blocked or unblocked the bot. Commits."""
    if reachable:
        member.reachable = True
        member.unreachable_reason = None
    else:
        await mark_unreachable(session, member, "blocked the bot", command_centre)
    await session.commit()
