"""One notice to every post holder of the seed county through the outbox sender, against
the Telegram emulator with Telegram's limits, time-scaled.

    python -m benchmarks.broadcast [--scale-time 10] [--recipients 8202]
                                   [--ceiling-concurrency 128]

Three runs over the same recipients:
- the sender with its default pacing (rates multiplied by the time scale), against the
  emulator's strict limits: rate in Telegram time, losses, duplicates, 429s;
- the naive baseline: one ``send_message`` after another with a 50 ms sleep, over a
  subset (its rate does not depend on how many);
- the sender's own ceiling: emulator limits off, sender pacing off, and the emulator in a
  process of its own, as Telegram's servers would be: it is the sender's cost being
  measured, not the emulator's.

The last line printed is one JSON object, for scripts to read.
"""

import argparse
import asyncio
import contextlib
import gc
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramAPIError
from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config_sections import OutboxConfig
from bot.i18n import create_i18n
from handlers.outbound import TelegramRenderer
from models.db import create_engine, create_session_factory
from models.messages import Action, ActionKind, NoticeBody
from models.migrate import upgrade
from models.notices import Notice, NoticeKind, NoticeStatus
from models.org import Member, Post
from models.outbox.table import OutgoingMessage, delivery_counts, enqueue
from models.seed import seed_demo
from scheduler.sender import OutboxSender
from tests.emulator import Limits, TelegramEmulator

TOKEN = "123456:BENCH-wuji-broadcast"
FIRST_TELEGRAM_ID = 700_000_000
BASELINE_RECIPIENTS = 600
BASELINE_SLEEP_S = 0.05
UNLIMITED = 1e9
# Enough sends in flight to keep a loopback server busy while the sender parses answers.
CEILING_CONCURRENCY = 128
# Importing aiogram in a fresh process takes seconds.
CHILD_TIMEOUT_S = 60.0
ROOT = Path(__file__).resolve().parent.parent
NOTICE = "【通知】明日 9:00 全员核酸检测，请各单元长通知到户。&lt;请回复“收到”&gt; 🏠"


async def seed(session: AsyncSession, recipients: int) -> list[tuple[int, int]]:
    """The seed county, each post held by a made-up member; (member id, telegram id)."""
    await seed_demo(session, households_per_unit=1)
    post_ids = list(await session.scalars(select(Post.id).order_by(Post.id).limit(recipients)))
    members = cast(Table, Member.__table__)
    await session.execute(
        insert(members),
        [
            {
                "telegram_id": FIRST_TELEGRAM_ID + index,
                "name": f"成员{index}",
                "locale": "zh_Hans",
                "reachable": True,
            }
            for index in range(len(post_ids))
        ],
    )
    rows = (
        await session.execute(select(Member.id, Member.telegram_id).order_by(Member.telegram_id))
    ).all()
    posts = cast(Table, Post.__table__)
    await session.execute(
        update(posts).where(posts.c.id == bindparam("post_id")).values(holder_id=bindparam("mid")),
        [{"post_id": post_id, "mid": row.id} for post_id, row in zip(post_ids, rows, strict=True)],
    )
    await session.commit()
    return [(row.id, row.telegram_id) for row in rows]


async def enqueue_notice(
    session_factory: async_sessionmaker[AsyncSession],
    recipients: list[tuple[int, int]],
    source: str,
) -> float:
    """Queue one notice, with its "收到" button, for every recipient, as the fan-out does:
    the sender renders each row in its reader's language."""
    async with session_factory() as session:
        notice = Notice(
            author_telegram_id=1,
            levels=["zone", "grid", "building", "unit"],
            kind=NoticeKind.text,
            text=NOTICE,
            status=NoticeStatus.dispatched,
        )
        session.add(notice)
        await session.commit()
        started = time.perf_counter()
        ack = (Action(ActionKind.acknowledge_notice, notice.id),)
        await enqueue(
            session,
            [
                OutgoingMessage(
                    chat_id=telegram_id,
                    member_id=member_id,
                    content=NoticeBody(notice.id),
                    actions=ack,
                    dedupe_key=f"{source}:member:{member_id}",
                    source=source,
                )
                for member_id, telegram_id in recipients
            ],
        )
        await session.commit()
    return time.perf_counter() - started


def make_sender(
    session_factory: async_sessionmaker[AsyncSession], bot: Bot, config: OutboxConfig
) -> OutboxSender:
    renderer = TelegramRenderer(create_i18n("zh_Hans"))
    return OutboxSender(session_factory, bot, config, renderer=renderer)


def make_bot(api_server: TelegramAPIServer, timeout: float = 10.0) -> Bot:
    session = AiohttpSession(api=api_server, timeout=timeout)
    return Bot(TOKEN, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))


async def time_sender(
    session_factory: async_sessionmaker[AsyncSession],
    emulator: TelegramEmulator,
    config: OutboxConfig,
) -> tuple[float, float]:
    """Run the sender until idle; (seconds from start to the last delivery, peak sends)."""
    bot = make_bot(emulator.api_server)
    sender = make_sender(session_factory, bot, config)
    first_request = len(emulator.requests)
    started = time.monotonic()
    try:
        await sender.run_until_idle(timeout_s=600)
    finally:
        await bot.session.close()
    sends = [r for r in emulator.requests[first_request:] if r.method == "sendMessage"]
    delivered = [r.time for r in sends if r.status == 200]
    return (max(delivered) if delivered else time.monotonic()) - started, len(sends)


async def baseline(
    emulator: TelegramEmulator, chat_ids: list[int], scale: float
) -> tuple[float, float]:
    """A loop that sends and sleeps 50 ms (Telegram time): (msg/s in Telegram time, mean
    round trip in real seconds)."""
    bot = make_bot(emulator.api_server)
    round_trips = 0.0
    started = time.monotonic()
    try:
        for chat_id in chat_ids:
            sending = time.monotonic()
            # A naive loop loses a message that fails; the emulator's records count them.
            with contextlib.suppress(TelegramAPIError):
                await bot.send_message(chat_id, NOTICE)
            round_trips += time.monotonic() - sending
            await asyncio.sleep(BASELINE_SLEEP_S / scale)
    finally:
        await bot.session.close()
    rate = len(chat_ids) / ((time.monotonic() - started) * scale)
    return rate, round_trips / len(chat_ids)


async def run(scale: float, recipient_count: int, ceiling_concurrency: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="wuji-bench-") as directory:
        engine = create_engine(f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}")
        session_factory = create_session_factory(engine)
        try:
            await upgrade(engine)
            seeding = time.perf_counter()
            async with session_factory() as session:
                recipients = await seed(session, recipient_count)
            print(
                f"seeded the county and {len(recipients):,} members "
                f"in {time.perf_counter() - seeding:.1f} s"
            )
            paced = await measure_paced(session_factory, recipients, scale)
            ceiling = await measure_ceiling(session_factory, recipients, ceiling_concurrency)
        finally:
            await engine.dispose()
    return {
        "recipients": len(recipients),
        "limit_per_s": paced.limit,
        "rate_per_s": round(paced.rate, 2),
        "ratio": round(paced.rate / paced.limit, 4),
        "baseline_rate_per_s": round(paced.baseline_rate, 2),
        "ceiling_per_s": round(ceiling),
        "lost": paced.lost,
        "duplicates": paced.duplicates,
        "rejected_429": paced.rejected,
    }


@dataclass(frozen=True)
class PacedRun:
    rate: float  # msg/s in Telegram time
    limit: float
    baseline_rate: float
    lost: int
    duplicates: int
    rejected: int


async def measure_paced(
    session_factory: async_sessionmaker[AsyncSession],
    recipients: list[tuple[int, int]],
    scale: float,
) -> PacedRun:
    """The sender at its default pacing against the emulator's limits, then the naive loop,
    both with the emulator in this process."""
    chat_ids = [telegram_id for _, telegram_id in recipients]
    limits = Limits(time_scale=scale)
    async with TelegramEmulator(token=TOKEN, limits=limits) as emulator:
        for chat_id in chat_ids:
            emulator.user(chat_id).state.started = True  # each pressed Start once
        enqueue_s = await enqueue_notice(session_factory, recipients, "notice:1")
        print(f"enqueued {len(recipients):,} notices in one transaction in {enqueue_s:.2f} s")
        # The seeded county and the emulator's world of users are long-lived here but would
        # not be in a sender process; keep the collector from scanning them mid-run.
        gc.collect()
        gc.freeze()
        config = OutboxConfig(
            rate_per_s=OutboxConfig().rate_per_s * scale,
            private_chat_per_s=OutboxConfig().private_chat_per_s * scale,
            group_chat_per_min=OutboxConfig().group_chat_per_min * scale,
            poll_interval_s=OutboxConfig().poll_interval_s / scale,
        )
        elapsed, attempts = await time_sender(session_factory, emulator, config)
        received = Counter(
            r.params["chat_id"]
            for r in emulator.requests
            if r.method == "sendMessage" and r.status == 200
        )
        rejected = sum(1 for r in emulator.requests if r.status == 429)
        async with session_factory() as session:
            counts = await delivery_counts(session, "notice:1")
        by_status = {status.value: count for status, count in counts.items() if count}
        lost = sum(1 for chat_id in chat_ids if received[chat_id] == 0)
        duplicates = sum(1 for chat_id in chat_ids if received[chat_id] > 1)
        rate = sum(received.values()) / (elapsed * scale)
        limit = limits.global_per_s
        print(
            f"sender: {sum(received.values()):,} delivered in {elapsed:.1f} s real "
            f"= {elapsed * scale:.0f} s Telegram time: {rate:.2f} msg/s of {limit:.0f} "
            f"({rate / limit:.1%}); {attempts:,} sends, {rejected} answered 429; "
            f"lost {lost}, duplicates {duplicates}; "
            f"outbox {by_status}"
        )

        subset = chat_ids[:BASELINE_RECIPIENTS]
        before = len(emulator.requests)
        baseline_rate, round_trip = await baseline(emulator, subset, scale)
        baseline_429 = sum(1 for r in emulator.requests[before:] if r.status == 429)
        print(
            f"naive loop (send, sleep 50 ms) over the first {len(subset)}: "
            f"{baseline_rate:.2f} msg/s Telegram time, {baseline_429} answered 429 "
            f"(a round trip of {round_trip * 1000:.1f} ms counts ×{scale:g} like the sleep; "
            f"real Telegram's is longer, so the loop would be slower still)"
        )

    return PacedRun(rate, limit, baseline_rate, lost, duplicates, rejected)


async def measure_ceiling(
    session_factory: async_sessionmaker[AsyncSession],
    recipients: list[tuple[int, int]],
    concurrency: int,
) -> float:
    """The sender flat out, limits and pacing off, against the emulator in its own process:
    msg/s from the start to the last delivery."""
    chat_ids = range(FIRST_TELEGRAM_ID, FIRST_TELEGRAM_ID + len(recipients))
    assert [telegram_id for _, telegram_id in recipients] == list(chat_ids)
    unlimited = OutboxConfig(
        rate_per_s=UNLIMITED,
        private_chat_per_s=UNLIMITED,
        group_chat_per_min=UNLIMITED,
        poll_interval_s=0.05,
        concurrency=concurrency,
    )
    async with emulator_process(chat_ids) as emulator:
        await enqueue_notice(session_factory, recipients, "notice:2")
        # The runs before left garbage behind that a sender process would not have.
        gc.collect()
        gc.freeze()
        bot = make_bot(emulator.api_server)
        sender = make_sender(session_factory, bot, unlimited)
        started, cpu_started = time.monotonic(), time.process_time()
        try:
            await sender.run_until_idle(timeout_s=600)
        finally:
            cpu_s = time.process_time() - cpu_started
            await bot.session.close()
        got = await emulator.results()
    # time.monotonic() is one system-wide clock, so the child's times compare with ours.
    elapsed = got["last_delivery"] - started
    ceiling = got["delivered"] / elapsed
    print(
        f"ceiling (limits and pacing off; the emulator in a process of its own, so that only "
        f"the sender's work counts; concurrency {concurrency}): {got['delivered']:,} delivered "
        f"in {elapsed:.2f} s = {ceiling:.0f} msg/s; lost {got['lost']}, "
        f"duplicates {got['duplicates']}; CPU per message: sender process "
        f"{cpu_s / got['delivered'] * 1e6:.0f} µs, emulator "
        f"{got['cpu_s'] / got['delivered'] * 1e6:.0f} µs"
    )
    return ceiling


@dataclass(frozen=True)
class EmulatorProcess:
    process: asyncio.subprocess.Process
    api_server: TelegramAPIServer

    async def results(self) -> dict[str, Any]:
        """Stops the emulator; what it delivered: counts, and the time of the last one."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        results: dict[str, Any] = json.loads(await _read_line(self.process))
        await self.process.wait()
        return results


@contextlib.asynccontextmanager
async def emulator_process(chat_ids: range) -> AsyncIterator[EmulatorProcess]:
    """``serve_emulator`` in a child process, users ``chat_ids`` having pressed Start."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from benchmarks.broadcast import serve_emulator; serve_emulator()",
        str(chat_ids.start),
        str(len(chat_ids)),
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        yield EmulatorProcess(process, TelegramAPIServer.from_base(await _read_line(process)))
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _read_line(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), CHILD_TIMEOUT_S)
    if not line:
        raise RuntimeError("the emulator process ended unexpectedly")
    return line.decode().strip()


def serve_emulator() -> None:
    """The emulator process: ``python -c 'from benchmarks.broadcast import serve_emulator;
    serve_emulator()' FIRST COUNT``. Users FIRST to FIRST + COUNT - 1 have pressed Start.
    Prints its URL, serves until stdin closes, then prints what it delivered as JSON."""
    first, count = int(sys.argv[1]), int(sys.argv[2])
    asyncio.run(_serve_emulator(range(first, first + count)))


async def _serve_emulator(chat_ids: range) -> None:
    async with TelegramEmulator(token=TOKEN, limits=Limits(enabled=False)) as emulator:
        for chat_id in chat_ids:
            emulator.user(chat_id).state.started = True
        gc.collect()
        gc.freeze()
        print(emulator.base_url, flush=True)
        cpu_started = time.process_time()
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        cpu_s = time.process_time() - cpu_started
        delivered = [r for r in emulator.requests if r.method == "sendMessage" and r.status == 200]
        received = Counter(r.params["chat_id"] for r in delivered)
        results = {
            "delivered": len(delivered),
            "lost": sum(1 for chat_id in chat_ids if received[chat_id] == 0),
            "duplicates": sum(1 for chat_id in chat_ids if received[chat_id] > 1),
            "last_delivery": max(r.time for r in delivered),
            "cpu_s": cpu_s,
        }
        print(json.dumps(results), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.broadcast", description=__doc__)
    parser.add_argument("--scale-time", type=float, default=10.0)
    parser.add_argument("--recipients", type=int, default=8_202)
    parser.add_argument("--ceiling-concurrency", type=int, default=CEILING_CONCURRENCY)
    arguments = parser.parse_args()
    results = run(arguments.scale_time, arguments.recipients, arguments.ceiling_concurrency)
    print(json.dumps(asyncio.run(results)))


if __name__ == "__main__":
    main()
