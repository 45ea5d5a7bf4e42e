"""The updates benchmark's paced feeding: updates arrive evenly at the rate asked, and each
is timed from its arrival, so that waiting for a slot counts as a person would feel it."""

import asyncio
import time

from aiogram import Dispatcher, F
from aiogram.types import Message

from benchmarks.updates import Feeder, canned_bot


def echo_dispatcher(pause_s: float = 0.0) -> Dispatcher:
    dispatcher = Dispatcher()

    async def echo(message: Message) -> None:
        await asyncio.sleep(pause_s)
        await message.answer(message.text or "")

    dispatcher.message.register(echo, F.text)
    return dispatcher


async def test_paced_updates_arrive_evenly_at_the_rate() -> None:
    feeder = Feeder(echo_dispatcher(), canned_bot(), concurrency=8, rate=100)
    started = time.perf_counter()
    await asyncio.gather(*(feeder.say(user, f"hi {n}") for user in (1, 2) for n in range(10)))
    elapsed = time.perf_counter() - started
    assert len(feeder.latencies) == 20
    # Twenty arrivals 10 ms apart: the last one 190 ms after the first.
    assert elapsed >= 0.18


async def test_waiting_for_a_slot_counts_in_a_paced_updates_latency() -> None:
    # One slot, each update 50 ms, arriving every 10 ms: the queue grows, and so do the
    # latencies from arrival; unpaced, each is timed from its slot only.
    paced = Feeder(echo_dispatcher(0.05), canned_bot(), concurrency=1, rate=100)
    await asyncio.gather(*(paced.say(user, "hi") for user in range(1, 6)))
    assert max(paced.latencies) >= 0.18
    unpaced = Feeder(echo_dispatcher(0.05), canned_bot(), concurrency=1)
    await asyncio.gather(*(unpaced.say(user, "hi") for user in range(1, 6)))
    assert max(unpaced.latencies) < 0.15
