"""Members: the people who use the bot, whatever posts they hold."""

import weakref
from collections.abc import Collection
from typing import Any, Protocol

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, object_session

from models.org import Member
from models.outbox.reachability import mark_unreachable
from models.sqlite_driver import QUICK

CHANGED = "members_changed"


class MemberWatcher(Protocol):
    """Something that keeps members in memory (the bot's member cache) and must hear when
    one changes: told the telegram ids at the flush and again after the commit."""

    def members_changed(self, telegram_ids: Collection[int]) -> None: ...


_watchers: "weakref.WeakSet[Any]" = weakref.WeakSet()


def watch_members(watcher: MemberWatcher) -> None:
    """Tell ``watcher`` of every member inserted, updated or deleted through a session of
    this process, for as long as it lives."""
    _watchers.add(watcher)


def _tell(telegram_ids: Collection[int]) -> None:
    for watcher in list(_watchers):
        watcher.members_changed(telegram_ids)


@event.listens_for(Member, "after_insert")
@event.listens_for(Member, "after_update")
@event.listens_for(Member, "after_delete")
def _member_flushed(_mapper: Any, _connection: Any, member: Member) -> None:
    session = object_session(member)
    if session is not None:
        session.info.setdefault(CHANGED, set()).add(member.telegram_id)
    _tell((member.telegram_id,))


@event.listens_for(Session, "after_commit")
def _members_committed(session: Session) -> None:
    # Again after the commit: a reader that read the old row before it may have kept it.
    changed: set[int] | None = session.info.pop(CHANGED, None)
    if changed:
        _tell(changed)


async def member_by_telegram_id(session: AsyncSession, telegram_id: int) -> Member | None:
    """The member as the database has it now, also when the session already holds it (the
    update's member comes from a cache: whoever changes a member reads it afresh)."""
    return await session.scalar(
        select(Member)
        .where(Member.telegram_id == telegram_id)
        .execution_options(populate_existing=True, **QUICK)
    )


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
    # The member may come from the bot's cache: decide on the row as it stands, read in
    # this session (a cached object may belong to another).
    row = await session.get(Member, member.id, populate_existing=True)
    if row is None:
        return
    if reachable:
        row.reachable = True
        row.unreachable_reason = None
    else:
        await mark_unreachable(session, row, "blocked the bot", command_centre)
    await session.commit()
