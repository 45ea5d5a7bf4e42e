"""The members behind updates, kept in memory: every update needs its sender's member
record (the language, the id), and reading it was the largest cost of an update.

Invalidated by the domain (``models.members.watch_members``) whenever this process changes a
member. Another process (a webhook replica, the worker marking someone unreachable) can
change one unseen, so an entry also lives only ``ttl_s``: what a stale entry can do is
limited, since access is decided on posts read from the database on every update, a member's
id never changes, and whoever writes a member reads it afresh first
(``member_by_telegram_id``, ``set_reachable``). Someone who is not a member is not cached:
they may register the next moment, on another replica.
"""

import time
from collections.abc import Collection
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession

from models.fixed_rows import as_read, column_values
from models.members import member_by_telegram_id, watch_members
from models.org import Member

TTL_S = 30.0
MAX_ENTRIES = 20_000
COLUMNS = tuple(attribute.key for attribute in inspect(Member).column_attrs)


class MemberCache:
    def __init__(self, ttl_s: float = TTL_S, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: dict[int, tuple[float, dict[str, Any]]] = {}
        # Moves on every change: a read that began before a change does not fill the cache.
        self._generation = 0
        watch_members(self)

    def members_changed(self, telegram_ids: Collection[int]) -> None:
        self._generation += 1
        for telegram_id in telegram_ids:
            self._entries.pop(telegram_id, None)

    async def member(self, session: AsyncSession, telegram_id: int) -> Member | None:
        """The member, in ``session`` as if read there (so a handler may change it)."""
        entry = self._entries.get(telegram_id)
        if entry is not None and entry[0] > time.monotonic():
            return as_read(session, Member, entry[1])
        generation = self._generation
        found = await member_by_telegram_id(session, telegram_id)
        if found is not None and generation == self._generation:
            if len(self._entries) >= self.max_entries:
                del self._entries[next(iter(self._entries))]
            self._entries[telegram_id] = (time.monotonic() + self.ttl_s, column_values(found))
        return found


def detached_copy(member: Member) -> Member:
    """A session-free copy of ``member`` with the columns already loaded (nothing is read)."""
    loaded = inspect(member).dict
    return Member(**{column: loaded[column] for column in COLUMNS if column in loaded})
