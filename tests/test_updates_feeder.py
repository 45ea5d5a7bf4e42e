"""The updates benchmark's paced feeding: updates arrive evenly at the rate asked, and each
is timed from its arrival, so that waiting for a slot counts as a person would feel it."""

import asyncio
import subprocess
import sys
import time
from pathlib import Path

from aiogram import Dispatcher, F
from aiogram.types import Message

from benchmarks.__main__ import BENCHMARKS, last_json
from benchmarks.report import ROOT
from benchmarks.updates import Feeder, canned_bot, echo_run, merged, parts
from bot.config import Config


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


async def test_a_traced_feeder_keeps_each_updates_arrival_latency_and_what_it_was() -> None:
    feeder = Feeder(echo_dispatcher(), canned_bot(), concurrency=4, rate=50, trace=True)
    start = time.perf_counter()
    await asyncio.gather(feeder.say(1, "/report please"), feeder.press(2, "rs:8:4101:1"))
    traced = sorted(feeder.traced_from(start))
    assert [what for _, _, what in traced] == ["/report", "rs:8:4101:1"]
    (first, _, _), (second, _, _) = traced
    assert 0 <= first < second and second - first >= 0.018  # 20 ms apart at 50/s
    assert all(latency > 0 for _, latency, _ in traced)
    # Untraced, nothing is kept.
    plain = Feeder(echo_dispatcher(), canned_bot(), concurrency=4)
    await plain.say(1, "hi")
    assert plain.traced_from(start) == [] and len(plain.latencies) == 1


def test_a_run_shared_among_processes_gives_each_lead_to_one_and_splits_slots_and_rate() -> None:
    users = [100 + n for n in range(7)]
    jobs = parts("sqlite+aiosqlite:///x.db", Config(), users, concurrency=64, rate=150, processes=2)
    assert [job.users for job in jobs] == [[100, 102, 104, 106], [101, 103, 105]]
    # A lead's place in the whole run decides what it does, whichever process runs it.
    assert [job.indices for job in jobs] == [[0, 2, 4, 6], [1, 3, 5]]
    assert [(job.concurrency, job.rate) for job in jobs] == [(32, 75), (32, 75)]
    first, second = (job.first_update_id for job in jobs)
    assert second - first >= 10_000_000  # update ids never meet: each is claimed once
    # Fewer leads than processes: no empty process.
    assert len(parts("", Config(), users[:1], 64, None, processes=2)) == 1


def test_processes_outcomes_merge_into_one_run() -> None:
    one = {
        "elapsed": 2.0,
        "loop_cpu": 1.5,
        "latencies": [0.1],
        "writes": (3, 0.5),
        "trace": [(0.5, 0.1, "/report")],
    }
    other = {
        "elapsed": 3.0,
        "loop_cpu": 2.0,
        "latencies": [0.2, 0.3],
        "writes": (4, 0.25),
        "trace": [(0.25, 0.2, "rh:1"), (0.75, 0.3, "rs:1")],
    }
    run = merged(
        [
            one | {"bot_calls": {"SendMessage": 2}, "alerts_shown": 1},
            other | {"bot_calls": {"SendMessage": 1, "EditMessageText": 5}, "alerts_shown": 0},
        ]
    )
    assert run["elapsed"] == 3.0  # they started together: the slowest ends the run
    assert run["loop_cpu"] == 3.5 and sorted(run["latencies"]) == [0.1, 0.2, 0.3]
    assert run["writes"] == (7, 0.75)
    assert run["bot_calls"] == {"SendMessage": 3, "EditMessageText": 5}
    assert run["alerts_shown"] == 1 and run["processes"] == 2
    # The processes' traces as one, in the order the updates arrived.
    assert [what for _, _, what in run["trace"]] == ["rh:1", "/report", "rs:1"]


def test_the_echo_run_in_two_processes_feeds_every_message() -> None:
    run = echo_run([1, 2, 3], count=30, concurrency=4, processes=2)
    assert run["processes"] == 2
    assert len(run["latencies"]) == 30
    assert run["bot_calls"] == {"SendMessage": 30}


def test_a_small_run_prints_every_figure_the_runner_judges(tmp_path: Path) -> None:
    trace = tmp_path / "trace.txt"
    process = subprocess.run(
        [
            sys.executable, "-m", "benchmarks.updates", "--leads", "12", "--rate", "60",
            "--concurrency", "4", "--processes", "1", "--history", "1", "--trace", str(trace),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert process.returncode == 0, process.stderr[-2000:]
    figures = last_json(process.stdout)
    assert figures is not None
    for name in ("updates", "updates-postgresql"):
        benchmark = next(benchmark for benchmark in BENCHMARKS if benchmark.name == name)
        assert {target.key for target in benchmark.targets} <= figures.keys()
    assert figures["offered_per_s"] == 60 and 0 < figures["updates_per_s"] <= 61
    assert figures["updates"] == figures["capacity_updates"] > 12  # both runs, every tap
    lines = trace.read_text().splitlines()
    assert len(lines) == figures["updates"]
    assert sum(line.endswith(" /report") for line in lines) == 12
