"""The bot's whole update path while every unit lead of the seed county reports at once.

    python -m benchmarks.updates [--database URL] [--leads N] [--rate 450]
                                 [--concurrency 64] [--history 7] [--processes N]
                                 [--trace FILE]

Drives the real dispatcher (``bot.app.build_dispatcher``: its middlewares, FSM storage,
handlers and domain) on a SQLite file, or on ``--database`` (a PostgreSQL database that the
benchmark empties and fills: give it one of its own), with a bot session that answers every
Bot API method from canned results and sends nothing. The seed county gets a member on
each of its 2,899 unit lead posts, the ``--history`` days before reported in full (a week by
default: every household has a report per round kept, up to the retention's 30) and today's
round open; then every lead reports its unit at the same time:

- ``/report`` → the unit's sheet;
- a household → "no change" (most), "nobody home" (one lead in ten) or the whole form
  (one in five): numbers typed (some first as words or out of range, re-prompted),
  buttons for the choices, a double tap on a step already answered, an over-long note,
  text typed at the summary, then save; one form in four raises an alert, one in four
  opens a need;
- "All remaining: no change" and its confirmation for the rest of the unit.

Each update goes through ``dispatcher.feed_update`` as polling would hand it over. The leads
are shared among ``--processes`` processes (one per core by default), each with a dispatcher
of its own on the one database and every update of a chat, as webhook replicas behind a
balancer routing by chat would be; the slots and the rate are divided among them, and they
start together.

Two runs, each on a fresh database:

- **at load** (the figures the targets judge): the leads' updates arrive at ``--rate`` a
  second, evenly, whoever sends them (each lead still waits for the bot's answer before its
  next tap), at most ``--concurrency`` in the bot at once; an update's latency runs from its
  arrival to the bot's last answer, so time spent waiting for the bot counts, as a lead
  would feel it, and a bot that falls behind shows it in the p95 at once. Its rate is the
  updates served over the run's whole time, the leads' thin last seconds included, so the
  default offers 450 a second for a served rate above 400;
- **capacity**: ``--concurrency`` updates always in flight, as many a second as the bot
  takes. Its rate is the most the bot serves; its latencies are ``concurrency / rate`` by
  construction (Little's law), a measure of the queue the run keeps full, not of a lead's
  wait.

The same harness then feeds as many plain messages to an echo handler on a bare
``Dispatcher`` (memory FSM), with ``--concurrency`` in flight and shared the same way: the
framework's ceiling on this machine. ``--trace FILE`` writes every update of the run at load,
one line each: its arrival (seconds into the run), its latency (ms) and what it was.
The last line printed is one JSON object.
"""

import argparse
import asyncio
import itertools
import json
import multiprocessing
import os
import queue
import statistics
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Barrier as BarrierType
from pathlib import Path
from typing import Any, TypeVar

from aiogram import Bot, Dispatcher, F
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.base import BaseSession
from aiogram.enums import ParseMode
from aiogram.filters.callback_data import CallbackData
from aiogram.methods import (
    AnswerCallbackQuery,
    EditMessageText,
    SendMessage,
    TelegramMethod,
)
from aiogram.types import InlineKeyboardMarkup, Message, Update
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.app import build_dispatcher, build_storage, settle_memory
from bot.config import Config
from bot.forms import load_report_form, round_schedule
from bot.i18n import create_i18n
from handlers.report_views import (
    FieldAnswer,
    FormConfirm,
    HouseholdAction,
    HouseholdPick,
    UnitAllSame,
)
from models.alerts import Alert
from models.db import create_engine, create_session_factory, is_sqlite, write_lock_of
from models.forms import FieldKind, Form
from models.migrate import upgrade
from models.needs import Need
from models.rounds import HouseholdReport, ReportStatus, open_round
from models.seed import seed_demo

ADMIN_ID = 900_001
# A member per unit lead post: telegram ids far from any real one.
MEMBER_BASE = 10_000_000
BOT_TOKEN = "42:BENCH-wuji-updates"
BOT_USER = {"id": 42, "is_bot": True, "first_name": "Wuji", "username": "wuji_bench_bot"}
YESTERDAY_ANSWERS = {
    "people_at_home": 3,
    "symptoms": 0,
    "test_status": "negative",
    "isolation": "none",
    "vulnerable": ["aged_80_plus"],
    "needs": [],
    "note": "一切正常",
}


class CannedSession(BaseSession):
    """Answers every Bot API method as Telegram would, from canned results, without a
    network; remembers the last keyboard each chat was shown, which is what a user presses
    next."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()
        self.alerts_shown = 0
        self.keyboards: dict[int, InlineKeyboardMarkup | None] = {}
        self._message_ids = itertools.count(1)

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[Any],
        timeout: int | None = None,  # noqa: ASYNC109 (BaseSession's signature)
    ) -> Any:
        self.calls[type(method).__name__] += 1
        if isinstance(method, SendMessage):
            markup = method.reply_markup
            self.keyboards[int(method.chat_id)] = (
                markup if isinstance(markup, InlineKeyboardMarkup) else None
            )
            return Message.model_validate(
                {
                    "message_id": next(self._message_ids),
                    "date": datetime.now(UTC),
                    "chat": {"id": method.chat_id, "type": "private"},
                    "from": BOT_USER,
                    "text": method.text,
                },
                context={"bot": bot},
            )
        if isinstance(method, EditMessageText):
            markup = method.reply_markup
            if method.chat_id is not None:
                self.keyboards[int(method.chat_id)] = markup
            return True
        if isinstance(method, AnswerCallbackQuery):
            self.alerts_shown += bool(method.show_alert)
            return True
        return True

    def stream_content(self, *args: Any, **kwargs: Any) -> AsyncGenerator[bytes, None]:
        raise NotImplementedError("the benchmark downloads nothing")

    async def close(self) -> None:
        return None


def canned_bot() -> Bot:
    return Bot(
        BOT_TOKEN,
        session=CannedSession(),
        default=DefaultBotProperties(parse_mode=ParseMode.HTML),
    )


class Feeder:
    """Feeds updates to a dispatcher, at most ``concurrency`` at a time, timing each.

    With ``rate``, updates arrive at that many a second, spaced evenly, whoever sends them
    (each lead still waits for the bot's answer before its next tap), and an update's
    latency runs from its arrival: time waiting for a slot counts, as it would for a
    person."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        bot: Bot,
        concurrency: int,
        rate: float | None = None,
        first_update_id: int = 1,
        trace: bool = False,
    ) -> None:
        self.dispatcher = dispatcher
        self.bot = bot
        self.slots = asyncio.Semaphore(concurrency)
        self.latencies: list[float] = []
        # With ``trace``: (arrival, latency, what) of every update.
        self.trace: list[tuple[float, float, str]] | None = [] if trace else None
        self.spacing = 1 / rate if rate else 0.0
        self._next_arrival = 0.0
        self._update_ids = itertools.count(first_update_id)
        self._ids = itertools.count(1)

    async def feed(self, raw: dict[str, Any]) -> None:
        raw["update_id"] = next(self._update_ids)
        arrival = await self._arrival()
        async with self.slots:
            started = arrival or time.perf_counter()
            update = Update.model_validate(raw, context={"bot": self.bot})
            await self.dispatcher.feed_update(self.bot, update)
            latency = time.perf_counter() - started
            self.latencies.append(latency)
            if self.trace is not None:
                self.trace.append((started, latency, _what(raw)))

    async def _arrival(self) -> float | None:
        """Paced: wait for this update's turn to arrive, and return when it was."""
        if not self.spacing:
            return None
        now = time.perf_counter()
        arrival = self._next_arrival = max(now, self._next_arrival + self.spacing)
        await asyncio.sleep(arrival - now)
        return arrival

    def traced_from(self, start: float) -> list[tuple[float, float, str]]:
        return [(at - start, latency, what) for at, latency, what in self.trace or ()]

    def user(self, user_id: int) -> dict[str, Any]:
        return {"id": user_id, "is_bot": False, "first_name": f"U{user_id}", "language_code": "zh"}

    async def say(self, user_id: int, words: str) -> None:
        message: dict[str, Any] = {
            "message_id": next(self._ids),
            "date": datetime.now(UTC),
            "chat": {"id": user_id, "type": "private", "first_name": f"U{user_id}"},
            "from": self.user(user_id),
            "text": words,
        }
        if words.startswith("/"):
            length = len(words.split(maxsplit=1)[0])
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        await self.feed({"message": message})

    async def press(self, user_id: int, data: str) -> None:
        shown = {
            "message_id": next(self._ids),
            "date": datetime.now(UTC),
            "chat": {"id": user_id, "type": "private", "first_name": f"U{user_id}"},
            "from": BOT_USER,
            "text": "…",
        }
        query = {
            "id": str(next(self._ids)),
            "from": self.user(user_id),
            "chat_instance": f"{user_id}17",
            "message": shown,
            "data": data,
        }
        await self.feed({"callback_query": query})


def _what(raw: dict[str, Any]) -> str:
    """An update in a word for the trace: its button's data, or the first of its text."""
    if "callback_query" in raw:
        return str(raw["callback_query"]["data"])
    words = str(raw["message"].get("text", "")).split()
    return (words[0] if words else "")[:16]


Data = TypeVar("Data", bound=CallbackData)


def buttons(markup: InlineKeyboardMarkup | None, kind: type[Data]) -> list[tuple[str, Data]]:
    """The buttons of ``markup`` carrying ``kind``'s callback data, unpacked."""
    if markup is None:
        return []
    prefix = kind.__prefix__ + kind.__separator__
    found = []
    for row in markup.inline_keyboard:
        for button in row:
            data = button.callback_data
            if data and data.startswith(prefix):
                found.append((data, kind.unpack(data)))
    return found


class Lead:
    """One unit lead reporting its unit: what it presses and types, given what it sees."""

    def __init__(self, feeder: Feeder, session: CannedSession, form: Form, index: int) -> None:
        self.feeder = feeder
        self.session = session
        self.form = form
        self.index = index
        self.user_id = 0
        # One lead in five fills a whole form, one in ten says nobody is home.
        self.how = "fill" if index % 5 == 0 else "away" if index % 10 == 1 else "same"
        self.variant = index // 5

    @property
    def keyboard(self) -> InlineKeyboardMarkup | None:
        return self.session.keyboards.get(self.user_id)

    async def report(self, user_id: int) -> None:
        self.user_id = user_id
        await self.feeder.say(user_id, "/report")
        households = buttons(self.keyboard, HouseholdPick)
        for data, _pick in households[:2]:
            await self.feeder.press(user_id, data)
            how = "same" if data == households[0][0] else self.how
            actions = [
                item
                for item, action in buttons(self.keyboard, HouseholdAction)
                if action.action == how
            ]
            if not actions:
                continue
            await self.feeder.press(user_id, actions[0])
            if how == "fill":
                await self.fill()
        for _ in range(2):  # asked, then confirmed
            remaining = buttons(self.keyboard, UnitAllSame)
            if not remaining:
                break
            await self.feeder.press(user_id, remaining[0][0])

    async def fill(self) -> None:
        variant = self.variant
        doubled = False
        toggled: set[int] = set()
        for _ in range(30):
            steps = buttons(self.keyboard, FieldAnswer)
            if not steps:
                confirm = [
                    data for data, button in buttons(self.keyboard, FormConfirm) if button.save
                ]
                if confirm:
                    if variant % 3 == 0:
                        await self.feeder.say(self.user_id, "好了")  # typed at the summary
                    await self.feeder.press(self.user_id, confirm[0])
                return
            step = steps[0][1].step
            field = self.form.fields[step]
            chosen = self._choose(field.id, field.kind, steps, variant, step in toggled)
            toggled.add(step)
            if isinstance(chosen, str) and chosen.startswith(FieldAnswer.__prefix__ + ":"):
                await self.feeder.press(self.user_id, chosen)
                if not doubled and variant % 4 == 1:
                    doubled = True
                    await self.feeder.press(self.user_id, chosen)  # a double tap: stale
            else:
                for words in chosen:
                    await self.feeder.say(self.user_id, words)

    @staticmethod
    def _choose(
        field_id: str,
        kind: FieldKind,
        steps: list[tuple[str, FieldAnswer]],
        variant: int,
        again: bool,
    ) -> str | list[str]:
        def op(name: str, value: int = 0) -> str:
            return next(
                (data for data, step in steps if step.op == name and step.value == value),
                steps[0][0],
            )

        if field_id == "people_at_home":
            typed = ["三个人", "99", "3"] if variant % 2 else ["3"]
            return typed
        if field_id == "symptoms":
            return op("set", 1 if variant % 4 == 2 else 0)
        if field_id == "test_status":
            return op("set", 2 if variant % 8 == 3 else 0)
        if kind is FieldKind.single:
            return op("set", 0)
        if field_id == "needs":
            if variant % 4 == 3 and not again:
                return op("toggle", 1)  # food: opens a need
            return op("done")
        if kind is FieldKind.multi:
            return op("done")
        if field_id == "note":
            return ["很" * 300, "一切正常"] if variant % 3 == 1 else ["一切正常"]
        return ["其他"]


async def prepare(
    url: str, history: int
) -> tuple[AsyncEngine, async_sessionmaker[AsyncSession], Config]:
    engine = create_engine(url)
    if not is_sqlite(url):
        async with engine.begin() as connection:
            await connection.execute(text("DROP SCHEMA public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
    await upgrade(engine)
    config = Config()
    config.database.url = url
    config.admins.telegram_ids = [ADMIN_ID]
    # Open all day, so that the round is open whenever the benchmark runs.
    config.reports.open_time = datetime.min.time()
    config.reports.close_time = datetime.min.time()
    factory = create_session_factory(engine)
    form = load_report_form(config)
    schedule = round_schedule(config)
    today = datetime.now(schedule.zone).date()
    async with factory() as session:
        report = await seed_demo(session)
        await session.execute(
            text(
                "INSERT INTO members (telegram_id, name, reachable, created_at) "
                f"SELECT {MEMBER_BASE} + posts.id, 'lead ' || posts.id, true, CURRENT_TIMESTAMP "
                "FROM posts JOIN nodes ON nodes.id = posts.node_id "
                "WHERE nodes.level = 'unit' AND posts.role = 'lead'"
            )
        )
        await session.execute(
            text(
                "UPDATE posts SET holder_id = "
                f"(SELECT id FROM members WHERE telegram_id = {MEMBER_BASE} + posts.id)"
            )
        )
        await session.commit()
        for days_ago in range(history, 0, -1):
            earlier = await open_round(session, schedule, form, today - timedelta(days=days_ago))
            await session.execute(
                update(HouseholdReport)
                .where(HouseholdReport.round_id == earlier.id)
                .values(
                    status="reported",
                    how="no_change",
                    answers=YESTERDAY_ANSWERS,
                    revision=1,
                    reported_at=earlier.opens_at + timedelta(hours=2),
                ),
                execution_options={"synchronize_session": False},
            )
            await session.commit()
        await open_round(session, schedule, form, today)
    print(
        f"seed county: {report.households:,} households, "
        f"{history} earlier round{'s' if history != 1 else ''} reported in full"
    )
    return engine, factory, config


async def lead_ids(factory: async_sessionmaker[AsyncSession]) -> list[int]:
    async with factory() as session:
        rows = await session.scalars(
            text(
                "SELECT members.telegram_id FROM members JOIN posts ON posts.holder_id = members.id"
                " ORDER BY posts.id"
            )
        )
        return [int(row) for row in rows]


@dataclass(frozen=True)
class Part:
    """One process's share of a run: its leads (a chat never leaves its process, as a
    balancer keeping each chat on one webhook replica would have it), its slots and rate."""

    url: str
    config: Config
    users: list[int]
    indices: list[int]
    concurrency: int
    rate: float | None
    first_update_id: int
    # The echo run: how many messages each chat sends.
    messages_each: int = 0
    # Keep every update's arrival, latency and kind.
    trace: bool = False


# A part's coroutine: given its share and a wait for every process to be ready.
PartRun = Callable[[Part, Callable[[], Awaitable[Any]]], Awaitable[dict[str, Any]]]


def parts(
    url: str,
    config: Config,
    users: list[int],
    concurrency: int,
    rate: float | None,
    processes: int,
) -> list[Part]:
    """The run shared among ``processes``: lead ``i`` to process ``i % processes``, the slots
    and the arrival rate divided evenly, update ids of each process far from the others'."""
    return [
        Part(
            url,
            config,
            users[number::processes],
            list(range(len(users)))[number::processes],
            max(1, concurrency // processes),
            rate / processes if rate else None,
            1 + number * 100_000_000,
        )
        for number in range(processes)
        if users[number::processes]
    ]


def run_parts(target: PartRun, jobs: list[Part]) -> dict[str, Any]:
    """Runs each part in a fresh process of its own; all start at one moment (a barrier,
    after each has built its dispatcher), and their outcomes are merged."""
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(len(jobs), timeout=600)
    results = context.Queue()
    processes = [
        context.Process(target=_part_main, args=(target, job, ready, results)) for job in jobs
    ]
    for process in processes:
        process.start()
    outcomes: list[dict[str, Any]] = []
    while len(outcomes) < len(processes):
        try:
            outcomes.append(results.get(timeout=5))
        except queue.Empty:
            if not any(process.is_alive() for process in processes):
                raise SystemExit("a benchmark process died without an outcome") from None
    for process in processes:
        process.join()
    failed = [outcome["error"] for outcome in outcomes if "error" in outcome]
    if failed:
        raise SystemExit("a benchmark process failed:\n" + failed[0])
    return merged(outcomes)


def _part_main(
    target: PartRun,
    job: Part,
    ready: BarrierType,
    results: "multiprocessing.Queue[dict[str, Any]]",
) -> None:
    async def run() -> dict[str, Any]:
        return await target(job, lambda: asyncio.to_thread(ready.wait))

    try:
        results.put(asyncio.run(run()))
    except BaseException:
        ready.abort()
        results.put({"error": traceback.format_exc()})


def merged(outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    """The processes' outcomes as one run's: they started together, so the run lasted as
    long as the slowest; CPU, latencies and counts add up."""
    calls: Counter[str] = Counter()
    for outcome in outcomes:
        calls.update(outcome["bot_calls"])
    writes = [outcome["writes"] for outcome in outcomes if outcome["writes"] is not None]
    return {
        "elapsed": max(outcome["elapsed"] for outcome in outcomes),
        "loop_cpu": sum(outcome["loop_cpu"] for outcome in outcomes),
        "latencies": [latency for outcome in outcomes for latency in outcome["latencies"]],
        "writes": tuple(map(sum, zip(*writes, strict=True))) if writes else None,
        "bot_calls": dict(calls),
        "alerts_shown": sum(outcome["alerts_shown"] for outcome in outcomes),
        "processes": len(outcomes),
        "trace": sorted(entry for outcome in outcomes for entry in outcome.get("trace", ())),
    }


async def reports_part(job: Part, ready: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    """One process's leads reporting through a dispatcher of its own on the shared database."""
    engine = create_engine(job.url)
    try:
        factory = create_session_factory(engine)
        i18n = create_i18n(job.config.i18n.default_locale)
        storage, isolation = build_storage(job.config, factory)
        dispatcher = build_dispatcher(job.config, factory, i18n, storage, isolation)
        bot = canned_bot()
        session = bot.session
        assert isinstance(session, CannedSession)
        feeder = Feeder(dispatcher, bot, job.concurrency, job.rate, job.first_update_id, job.trace)
        form = load_report_form(job.config)
        reporters = [Lead(feeder, session, form, index) for index in job.indices]
        settle_memory()  # as `python -m bot run` does once started
        lock = write_lock_of(engine)
        before = (lock.transactions, lock.held_s) if lock else (0, 0.0)
        await ready()
        started, cpu = time.perf_counter(), time.thread_time()
        await asyncio.gather(
            *(lead.report(user) for lead, user in zip(reporters, job.users, strict=True))
        )
        elapsed, cpu = time.perf_counter() - started, time.thread_time() - cpu
        writes = (lock.transactions - before[0], lock.held_s - before[1]) if lock else None
        return {
            "elapsed": elapsed,
            "loop_cpu": cpu,
            "latencies": feeder.latencies,
            "writes": writes,
            "bot_calls": dict(session.calls),
            "alerts_shown": session.alerts_shown,
            "trace": feeder.traced_from(started),
        }
    finally:
        await engine.dispose()


async def reports_run(
    url: str,
    leads: int,
    concurrency: int,
    history: int,
    rate: float | None = None,
    processes: int = 1,
    trace: bool = False,
) -> dict[str, Any]:
    engine, factory, config = await prepare(url, history)
    try:
        users = (await lead_ids(factory))[:leads]
        jobs = [
            replace(job, trace=trace)
            for job in parts(url, config, users, concurrency, rate, processes)
        ]
        run = await asyncio.to_thread(run_parts, reports_part, jobs)
        return run | {"users": users} | await tally(factory)
    finally:
        await engine.dispose()


async def tally(factory: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    async with factory() as session:
        statuses = await session.execute(
            select(HouseholdReport.how, func.count())
            .where(HouseholdReport.status != ReportStatus.missing.value)
            .where(
                HouseholdReport.round_id
                == select(func.max(HouseholdReport.round_id)).scalar_subquery()
            )
            .group_by(HouseholdReport.how)
        )
        return {
            "saved": {str(how): count for how, count in statuses},
            "alerts": await session.scalar(select(func.count()).select_from(Alert)),
            "needs": await session.scalar(select(func.count()).select_from(Need)),
        }


async def echo_part(job: Part, ready: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    """The framework's ceiling: the same feeding of as many updates to an echo handler."""
    dispatcher = Dispatcher()

    async def echo(message: Message) -> None:
        await message.answer(message.text or "")

    dispatcher.message.register(echo, F.text)
    bot = canned_bot()
    session = bot.session
    assert isinstance(session, CannedSession)
    feeder = Feeder(dispatcher, bot, job.concurrency, None, job.first_update_id)

    async def chat(user_id: int) -> None:
        for number in range(job.messages_each):
            await feeder.say(user_id, f"hello {number}")

    await ready()
    started, cpu = time.perf_counter(), time.thread_time()
    await asyncio.gather(*(chat(user) for user in job.users))
    return {
        "elapsed": time.perf_counter() - started,
        "loop_cpu": time.thread_time() - cpu,
        "latencies": feeder.latencies,
        "writes": None,
        "bot_calls": dict(session.calls),
        "alerts_shown": 0,
    }


def echo_run(users: list[int], count: int, concurrency: int, processes: int) -> dict[str, Any]:
    per_user = -(-count // len(users))
    jobs = [
        replace(job, messages_each=per_user)
        for job in parts("", Config(), users, concurrency, None, processes)
    ]
    return run_parts(echo_part, jobs)


def p95_ms(latencies: list[float]) -> float:
    return statistics.quantiles(latencies, n=20)[-1] * 1000


async def main(
    url: str,
    leads: int,
    rate: float,
    concurrency: int,
    history: int,
    processes: int,
    trace: Path | None = None,
) -> None:
    with tempfile.TemporaryDirectory(prefix="wuji-updates-") as folder:
        database = url or f"sqlite+aiosqlite:///{Path(folder) / 'capacity.db'}"
        capacity = await reports_run(database, leads, concurrency, history, None, processes)
        again = url or f"sqlite+aiosqlite:///{Path(folder) / 'load.db'}"
        load = await reports_run(
            again, leads, concurrency, history, rate, processes, trace is not None
        )
    engine_name = "sqlite" if is_sqlite(database) else "postgresql"
    plural = "es" if processes > 1 else ""
    served = len(capacity["latencies"])
    most = served / capacity["elapsed"]
    print(
        f"{engine_name}, {processes} process{plural}, capacity ({concurrency} always in "
        f"flight): {len(capacity['users']):,} leads, {served:,} updates in "
        f"{capacity['elapsed']:.1f} s: {most:.0f} updates/s, "
        f"p50 {statistics.median(capacity['latencies']) * 1000:.1f} ms, "
        f"p95 {p95_ms(capacity['latencies']):.1f} ms (the queue kept full: {concurrency} / rate)"
    )
    print(
        f"  saved {capacity['saved']}, alerts {capacity['alerts']}, needs {capacity['needs']}, "
        f"refusals and re-prompts shown as alerts {capacity['alerts_shown']}"
    )
    print(f"  bot calls {capacity['bot_calls']}")
    loop_cpu_ms = capacity["loop_cpu"] / served * 1000
    print(
        f"  the event loop's CPU: {loop_cpu_ms:.2f} ms per update "
        f"({capacity['loop_cpu'] / (capacity['elapsed'] * processes):.0%} of each process's "
        "run; the rest waits for the database's thread or for the machine)"
    )
    if capacity["writes"] is not None:
        transactions, held_s = capacity["writes"]
        print(
            f"  SQLite write transactions {transactions:,} ({transactions / served:.2f} per "
            f"update), the write lock held {held_s / (capacity['elapsed'] * processes):.0%} of "
            "each process's run, "
            f"{held_s / max(transactions, 1) * 1000:.1f} ms per transaction"
        )
    echo = await asyncio.to_thread(echo_run, capacity["users"], served, concurrency, processes)
    echo_rate = len(echo["latencies"]) / echo["elapsed"]
    echo_cpu_ms = echo["loop_cpu"] / len(echo["latencies"]) * 1000
    print(
        f"echo on a bare Dispatcher: {echo_rate:.0f} updates/s, "
        f"p95 {p95_ms(echo['latencies']):.1f} ms, the loop's CPU {echo_cpu_ms:.2f} ms per update"
    )
    latencies = load["latencies"]
    achieved = len(latencies) / load["elapsed"]
    print(
        f"at load: {len(load['users']):,} leads, updates arriving at {rate:.0f}/s: "
        f"{len(latencies):,} served in {load['elapsed']:.1f} s ({achieved:.0f}/s), "
        f"p50 {statistics.median(latencies) * 1000:.1f} ms, "
        f"p95 {p95_ms(latencies):.1f} ms from arrival; saved {load['saved']}"
    )
    if trace is not None:
        lines = (f"{at:.4f} {latency * 1000:.2f} {what}\n" for at, latency, what in load["trace"])
        await asyncio.to_thread(trace.write_text, "".join(lines))
        print(f"  every update of the run at load: {trace}")
    print(
        json.dumps(
            {
                "processes": processes,
                "updates": len(latencies),
                "updates_per_s": round(achieved, 1),
                "p50_ms": round(statistics.median(latencies) * 1000, 1),
                "p95_ms": round(p95_ms(latencies), 1),
                "offered_per_s": rate,
                "echo_updates_per_s": round(echo_rate, 1),
                "ratio": round(achieved / echo_rate, 3),
                "capacity_updates": served,
                "capacity_updates_per_s": round(most, 1),
                "capacity_p95_ms": round(p95_ms(capacity["latencies"]), 1),
                "capacity_ratio": round(most / echo_rate, 3),
                "loop_cpu_ms": round(loop_cpu_ms, 3),
                "echo_loop_cpu_ms": round(echo_cpu_ms, 3),
            }
        )
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database",
        default="",
        help="a PostgreSQL URL (postgresql+asyncpg://…) of a database of its own: emptied "
        "and filled; default a fresh SQLite file",
    )
    parser.add_argument("--leads", type=int, default=2_899, help="unit leads reporting")
    parser.add_argument(
        "--rate",
        type=float,
        default=450.0,
        help="updates arriving a second in the run at load (the seed county's peak is about "
        "150: 35,000 households in two hours, three taps each, ten times the average)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=64,
        help="updates in the bot at once: at most, at load; always, for its capacity",
    )
    parser.add_argument(
        "--history",
        type=int,
        default=7,
        help="earlier daily rounds reported in full before today's (the retention keeps 30)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="processes sharing the leads, each with its own dispatcher on the one database "
        "(as webhook replicas behind a balancer that keeps a chat on one); default: one a core",
    )
    parser.add_argument(
        "--trace",
        type=Path,
        help="write every update of the run at load here: arrival (s), latency (ms), what",
    )
    arguments = parser.parse_args()
    if arguments.rate <= 0:
        parser.error("--rate must be above 0")
    if arguments.trace is not None:
        try:  # found out now, not after the runs
            arguments.trace.open("w").close()
        except OSError as error:
            parser.error(f"--trace {arguments.trace}: {error.strerror or error}")
    return arguments


if __name__ == "__main__":
    arguments = parse_args()
    asyncio.run(
        main(
            arguments.database,
            arguments.leads,
            arguments.rate,
            arguments.concurrency,
            arguments.history,
            arguments.processes,
            arguments.trace,
        )
    )
