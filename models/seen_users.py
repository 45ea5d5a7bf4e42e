"""Everyone who has messaged the bot, and finding a person by @username or Telegram id
among them and the members (``/assign``)."""

import re
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.base import utcnow
from models.db import per_dialect
from models.members import member_by_telegram_id
from models.org import Member
from models.people import SeenUser
from models.refusals import Refused
from models.registration import get_or_create_member
from models.text import CONTROL_CHARACTERS

USERNAME = re.compile(r"[A-Za-z0-9_]{4,32}")
# Telegram ids are positive and fit in 64 bits; anything else names nobody (and PostgreSQL
# would refuse it).
MAX_TELEGRAM_ID = 2**63 - 1


_SEEN_COLUMNS = ("username", "name", "locale", "seen_at")


def _seen(insert: Callable[..., Any]) -> Any:
    statement = insert(SeenUser)
    return statement.on_conflict_do_update(
        index_elements=[SeenUser.telegram_id],
        set_={column: statement.excluded[column] for column in _SEEN_COLUMNS},
    )


# Someone seen: inserted, or their row brought up to date. Built once per dialect.
_SEEN = per_dialect(_seen)


async def record_seen_user(
    session: AsyncSession,
    telegram_id: int,
    username: str | None,
    name: str,
    locale: str | None,
) -> None:
    """Remember the user as seen now; whoever was seen with the username before loses it
    (Telegram gives a username to one account at a time). Commits."""
    # Telegram's usernames are 5–32 of [A-Za-z0-9_]; anything else (a forged update) is
    # no username, and a name loses control characters (PostgreSQL refuses NUL).
    username = username.lower() if username and USERNAME.fullmatch(username) else None
    values = {
        "telegram_id": telegram_id,
        "username": username,
        "name": CONTROL_CHARACTERS.sub("", name)[:200],
        "locale": locale,
        "seen_at": utcnow(),
    }
    await session.execute(_SEEN[session.get_bind().dialect.name], values)
    if username:
        await session.execute(
            update(SeenUser)
            .where(SeenUser.username == username, SeenUser.telegram_id != telegram_id)
            .values(username=None)
        )
    await session.commit()


async def seen_by_username(session: AsyncSession, username: str) -> Sequence[SeenUser]:
    return (
        await session.scalars(
            select(SeenUser).where(SeenUser.username == username.lstrip("@").lower())
        )
    ).all()


async def person_to_appoint(session: AsyncSession, who: str) -> Member | None:
    """The member named by ``who`` (a Telegram id or an @username), or someone who has
    messaged the bot, given a member record now (not committed). None: nobody known.

    For a username, whoever the bot last saw with it is the one who has it now; only when
    nobody was seen with it do the members' own records decide, and several members last
    seen with it name nobody for sure (``Refused("assign.ambiguous_username")``)."""
    if who.isdigit():
        telegram_id = int(who)
        if not 0 < telegram_id <= MAX_TELEGRAM_ID:
            return None
        member = await member_by_telegram_id(session, telegram_id)
        if member is not None:
            return member
        seen = await session.get(SeenUser, telegram_id)
        return await _member_for(session, seen) if seen is not None else None
    seen_rows = await seen_by_username(session, who)
    if len(seen_rows) == 1:
        member = await member_by_telegram_id(session, seen_rows[0].telegram_id)
        return member or await _member_for(session, seen_rows[0])
    ids = {row.telegram_id for row in seen_rows}
    if not ids:
        ids = set(
            await session.scalars(
                select(Member.telegram_id).where(Member.username == who.lstrip("@").lower())
            )
        )
        if len(ids) == 1:
            return await member_by_telegram_id(session, ids.pop())
    if len(ids) > 1:
        raise Refused("assign.ambiguous_username", username=who.lstrip("@"), count=len(ids))
    return None


async def _member_for(session: AsyncSession, seen: SeenUser) -> Member:
    return await get_or_create_member(
        session, seen.telegram_id, seen.name, None, seen.locale, seen.username
    )
