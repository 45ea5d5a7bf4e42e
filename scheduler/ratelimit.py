"""Pacing for the outbox sender: one overall rate, and a minimum gap per chat.

Telegram answers 429 rather than queueing, so sends are spaced evenly instead of fired in
bursts and then throttled (https://core.telegram.org/bots/faq#broadcasting-to-users).
"""

import asyncio
import contextlib
import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

# Claimed rows kept in memory per chat; the rest go back to the database until their
# turn, so that one busy group does not fill the sender's memory and hold others up.
CHAT_BACKLOG = 3
# How soon a sender waiting for its slot notices that sending stops.
CLOSE_CHECK_S = 0.25


class Wakeup:
    """Wakes every waiter once; unlike an Event it needs no clearing."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    def mark(self) -> asyncio.Event:
        """A mark to ``wait`` from: a ``fire()`` after it is not missed by a waiter that
        looked at its work in between."""
        return self._event

    async def wait(self, seconds: float | None, since: asyncio.Event | None = None) -> None:
        """Until the next ``fire()`` (after ``since``, if given), or ``seconds`` (None: no
        limit)."""
        event = self._event if since is None else since
        if seconds is None:
            await event.wait()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), max(seconds, 0))


class Pacer:
    """Spaces sends ``1/rate`` apart and holds every one of them during a pause (429).

    Slots are handed out in order. A sender late for its slot may still use it, up to one
    slot or 10 ms behind, so that an event loop busy for a moment does not lower the rate
    for good, while no second holds more than a slot or two above the rate.
    """

    def __init__(self, rate_per_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1 / rate_per_s
        self._slack = max(self.interval, 0.01)
        self._clock = clock
        self._next = 0.0
        self.paused_until = 0.0
        self._closed = False

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, self._clock() + seconds)

    def close(self) -> None:
        self._closed = True

    async def acquire(self) -> float:
        """Wait for this send's slot; returns the time it may go. Raises ``ScheduleClosed``
        once closed."""
        while True:
            now = self._clock()
            start = max(self._next, now - self._slack, self.paused_until)
            self._next = start + self.interval
            while now < start:
                # Plain sleeps (cheaper than waiting on an event with a timeout), short
                # enough that closing is noticed within a moment.
                await asyncio.sleep(min(start - now, CLOSE_CHECK_S))
                if self._closed:
                    raise ScheduleClosed
                now = self._clock()
            if self._closed:
                raise ScheduleClosed
            if now >= self.paused_until:
                return now


class HasChat(Protocol):
    @property
    def chat_id(self) -> int: ...


Row = TypeVar("Row", bound=HasChat)


class ChatSchedule(Generic[Row]):
    """Rows waiting to be sent, one queue per chat, handed out when their chat may take the
    next message: ``private_gap`` seconds apart in private chats, ``group_gap`` in groups
    (negative ids). A chat has at most one row out at a time, which keeps its order."""

    def __init__(
        self,
        private_gap: float,
        group_gap: float,
        backlog: int = CHAT_BACKLOG,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._gaps = (private_gap, group_gap)
        self._backlog = backlog
        self._clock = clock
        self._queues: dict[int, deque[Row]] = {}
        self._ready: list[tuple[float, int, int]] = []  # (may go at, order, chat id)
        self._waiting: set[int] = set()  # chats in _ready
        self._out: set[int] = set()  # chats with a row being sent
        self._free_at: dict[int, float] = {}
        self._deferred_to: dict[int, float] = {}
        self._order = itertools.count()
        self._changed = Wakeup()
        self._closed = False
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def gap(self, chat_id: int) -> float:
        return self._gaps[chat_id < 0]

    def put(self, row: Row) -> float | None:
        """Queue ``row``; or, when its chat already has a backlog, return in how many
        seconds it would be its turn, for the caller to put it back until then."""
        chat_id = row.chat_id
        queue = self._queues.get(chat_id)
        now = self._clock()
        if queue is not None and len(queue) >= self._backlog:
            turn = max(now, self._free_at.get(chat_id, now)) + len(queue) * self.gap(chat_id)
            turn = max(turn, self._deferred_to.get(chat_id, 0.0) + self.gap(chat_id))
            self._deferred_to[chat_id] = turn
            return turn - now
        if queue is None:
            queue = self._queues[chat_id] = deque()
        queue.append(row)
        self._size += 1
        if chat_id not in self._out and chat_id not in self._waiting:
            self._schedule(chat_id, max(now, self._free_at.get(chat_id, now)))
        self._changed.fire()
        return None

    async def take(self) -> Row:
        """The next row whose chat may take a message now; waits until there is one.
        Raises ``ScheduleClosed`` once closed."""
        while True:
            if self._closed:
                raise ScheduleClosed
            timeout: float | None = None
            if self._ready:
                at, _, chat_id = self._ready[0]
                now = self._clock()
                if at <= now:
                    heapq.heappop(self._ready)
                    self._waiting.discard(chat_id)
                    queue = self._queues[chat_id]
                    row = queue.popleft()
                    if not queue:
                        del self._queues[chat_id]
                    self._out.add(chat_id)
                    self._size -= 1
                    return row
                timeout = at - now
            await self._changed.wait(timeout)

    def sent(self, chat_id: int, at: float) -> None:
        """The row taken for ``chat_id`` went at ``at``: its next one may go a gap later."""
        self._out.discard(chat_id)
        self._free_at[chat_id] = at + self.gap(chat_id)
        if chat_id in self._queues:
            self._schedule(chat_id, self._free_at[chat_id])
            self._changed.fire()
        if len(self._free_at) > 4 * max(len(self._queues), 1024):
            self._forget_before(self._clock())

    def close(self) -> None:
        self._closed = True
        self._changed.fire()

    def rows(self) -> list[Row]:
        return [row for queue in self._queues.values() for row in queue]

    def _schedule(self, chat_id: int, at: float) -> None:
        heapq.heappush(self._ready, (at, next(self._order), chat_id))
        self._waiting.add(chat_id)

    def _forget_before(self, now: float) -> None:
        self._free_at = {chat: at for chat, at in self._free_at.items() if at > now}
        self._deferred_to = {chat: at for chat, at in self._deferred_to.items() if at > now}


class ScheduleClosed(Exception):
    """The sender is stopping."""
