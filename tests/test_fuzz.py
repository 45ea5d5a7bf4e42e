"""Hostile input: thousands of random and malformed updates fed to the real dispatcher (every
router and middleware, a real database, the outbox sender delivering what they queue) —
random text and Unicode, wrong kinds of message in whatever conversation a person is in,
real buttons pressed by the wrong people, forged and stale callback data of every prefix
the bot defines, commands from strangers, in private and group chats.

After every update: no handler failed (nothing logged at ERROR, no apology sent), nobody
was shown a name, phone or household answer outside their scope (groups: none at all), a
private update was answered. After every example: no orphan rows, no round with more
reports than households, every update handled exactly once (a redelivery is skipped)."""

import asyncio
import logging
import os
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, cast

import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.enums import ParseMode
from aiogram.types import Update
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.app import build_dispatcher, build_sender, build_storage
from bot.config import Config
from bot.forms import consequences, load_report_form, round_schedule
from bot.i18n import create_i18n
from models.access import scope_of
from models.db import create_engine, create_session_factory, is_sqlite
from models.groups import bind_group
from models.invites import create_invites
from models.migrate import upgrade
from models.notices import NoticeDraft, create_notice
from models.org import Household, Member, Post
from models.posts import bind, node_by_path, post_at
from models.report_saving import save_report
from models.reports import Reporter
from models.rounds import ReportHow, current_round
from scheduler.sender import OutboxSender
from tests.fixtures import FAST_BOT_TOKEN
from tests.fuzz_support import (
    FuzzSession,
    RecordedTransport,
    Secret,
    inconsistencies,
    leaks,
    posts_held,
)
from tests.fuzz_updates import ADMIN, BOUND_GROUP, MAX_STEPS, MIN_STEPS, UpdateMaker, steps
from tests.response_fixtures import (
    GRID,
    OTHER_UNIT,
    OUTSIDER,
    PEOPLE,
    UNIT,
    UNIT_LEAD,
    seat_county,
)

# Examples of 10-40 steps: about 1,000 updates (WUJI_FUZZ_EXAMPLES=600 searches longer).
EXAMPLES = int(os.environ.get("WUJI_FUZZ_EXAMPLES", "60"))

# The roster's people (examples/people.csv) and those seated, by where they stand.
PERSONS = [
    ("张建国", "13800138000", "县卫健局片区"),
    ("李娜", "13909710001", "县卫健局片区"),
    ("王芳", "13909710002", GRID),
    ("马晓东", "13909710003", GRID),
    ("赵强", "13909710004", "县卫健局片区/阳光小区/1号楼"),
    ("马秀兰", "13909710005", UNIT),
    ("韩梅", None, UNIT),
    ("韩志明", "13909710006", "县教育局片区"),
    ("祁玉梅", "13909710007", OTHER_UNIT),
    ("冶成", None, "县卫健局片区/康乐家园"),
]
# Household answers saved before the fuzzing starts, one in each zone.
NOTE_HERE, NOTE_THERE, NEED_HERE = "NOTEfromUNITa", "NOTEfromUNITb", "NEEDfromUNITa"
SECRETS = (
    [Secret(name, path) for name, _, path in PERSONS]
    + [Secret(phone, path) for _, phone, path in PERSONS if phone]
    + [Secret(NOTE_HERE, UNIT, down=True), Secret(NEED_HERE, UNIT, down=True)]
    + [Secret(NOTE_THERE, OTHER_UNIT, down=True)]
)


class Fuzzer:
    """One bot process's dispatcher and sender over a seeded county, fed step by step."""

    def __init__(self, config: Config, factory: async_sessionmaker[AsyncSession]) -> None:
        self.config, self.factory = config, factory
        self.bot = Bot(
            FAST_BOT_TOKEN,
            session=FuzzSession(),
            default=DefaultBotProperties(parse_mode=ParseMode.HTML),
        )
        self.i18n = create_i18n(config.i18n.default_locale)
        self.sender: OutboxSender = build_sender(config, factory, self.bot, self.i18n)
        self.sender.transport = RecordedTransport(self.bot)  # type: ignore[assignment]
        self.storage, self.isolation = build_storage(config, factory)
        self.dispatcher: Dispatcher = build_dispatcher(
            config, factory, self.i18n, self.storage, self.isolation, self.sender
        )
        self.apologies = {self.i18n.gettext("errors.generic", locale=x) for x in ("zh_Hans", "en")}
        self.updates = UpdateMaker(self.bot)
        self.update_ids: set[int] = set()
        self.last: Update | None = None
        self.held: dict[int, set[str]] = {}
        self.errors: list[logging.LogRecord] = []

    @property
    def session(self) -> FuzzSession:
        return cast(FuzzSession, self.bot.session)

    # --- one step, checked --------------------------------------------------------------

    async def feed(self, step: tuple[Any, ...]) -> None:
        if step[0] == "again":
            if self.last is not None:
                start = len(self.session.calls)
                await self.dispatcher.feed_update(self.bot, self.last)
                assert self.session.calls[start:] == [], "a redelivered update was handled again"
            return
        update = self.updates.build(step)
        if update is None:
            return
        start = len(self.session.calls)
        self.update_ids.add(update.update_id)
        self.last = update
        await self.dispatcher.feed_update(self.bot, update)
        await self.sender.run_until_idle(30)
        await self.check(update, start)

    async def check(self, update: Update, start: int) -> None:
        assert not self.errors, [r.getMessage() for r in self.errors]
        shown = self.session.shown_since(start)
        for item in shown:
            assert not any(a in item.text for a in self.apologies), item
            self.updates.tokens += re.findall(r"start=([A-Za-z0-9_-]{20,64})", item.text)
        async with self.factory() as session:
            now_held = await posts_held(session)
        held = {
            k: self.held.get(k, set()) | now_held.get(k, set())
            for k in set(self.held) | set(now_held)
        }
        self.held = now_held
        found = leaks(shown, SECRETS, held, {ADMIN})
        assert not found, found
        event = update.message or update.callback_query
        private = update.message is not None and update.message.chat.type == "private"
        if private or update.callback_query is not None:
            assert len(self.session.calls) > start, f"no answer to {event!r}"


# --- the county, seeded once per test ---------------------------------------------------


def fuzz_config(db_url: str) -> Config:
    config = Config()
    config.telegram.token = SecretStr(FAST_BOT_TOKEN)
    config.database.url = db_url
    config.admins.telegram_ids = [ADMIN]
    # The outbox goes at once: every message is checked in the step that queued it.
    config.outbox.rate_per_s = config.outbox.private_chat_per_s = 1_000_000
    config.outbox.group_chat_per_min = 1_000_000
    config.outbox.poll_interval_s = 0.01
    config.outbox.quiet_hours = False
    return config


async def seed(config: Config, factory: async_sessionmaker[AsyncSession]) -> list[str]:
    """The example county with its people seated, the group bound to the compound, a
    report with a note and a need in each zone, a notice, and invites to every vacant
    post (returned)."""
    await seat_county(factory)
    async with factory() as session:
        admin = await scope_of(session, ADMIN, [ADMIN])
        grid = await node_by_path(session, GRID)
        assert grid is not None
        await bind_group(session, BOUND_GROUP, "阳光小区志愿者群", grid.id, admin, ADMIN)
        form = load_report_form(config)
        report_round = await current_round(session, round_schedule(config), form)
        assert report_round is not None
        answers = {"people_at_home": 2, "symptoms": 1, "test_status": "pending"}
        answers |= {"isolation": "home", "vulnerable": [], "needs": ["other"]}
        for path, lead, note in ((UNIT, UNIT_LEAD, NOTE_HERE), (OTHER_UNIT, OUTSIDER, NOTE_THERE)):
            unit = await node_by_path(session, path)
            assert unit is not None
            household = await session.scalar(
                select(Household.id).where(Household.unit_id == unit.id)
            )
            member = await session.scalar(select(Member.id).where(Member.telegram_id == lead))
            reporter = Reporter(lead, member, await scope_of(session, lead, []))
            await save_report(
                session,
                reporter,
                consequences(config),
                round_id=report_round.id,
                household_id=household,
                revision=0,
                how=ReportHow.form,
                answers=answers
                | {"note": note, "needs_other": NEED_HERE if lead == UNIT_LEAD else "药"},
            )
        draft = NoticeDraft(
            ADMIN, None, ["zone", "grid", "unit"], True, None, text="<b>请</b> & 收到"
        )
        await create_notice(session, draft, admin)
        vacant = await session.scalars(select(Post.id).where(Post.holder_id.is_(None)))
        tokens = await create_invites(session, list(vacant), timedelta(days=1), ADMIN)
        await session.commit()
    return list(tokens.values())


async def reseat(factory: async_sessionmaker[AsyncSession]) -> None:
    """Everyone of ``PEOPLE`` back in a post left vacant (by /revoke, /leave…), and the
    compound's group bound again: each example starts with the county staffed."""
    async with factory() as session:
        for path, role, telegram_id, _ in PEOPLE:
            node = await node_by_path(session, path)
            post = await post_at(session, node.id, role) if node else None
            member = await session.scalar(select(Member).where(Member.telegram_id == telegram_id))
            if post is not None and member is not None and post.holder_id is None:
                await bind(session, post, member, None, how="test")
        await session.commit()
        grid = await node_by_path(session, GRID)
        assert grid is not None
        admin = await scope_of(session, ADMIN, [ADMIN])
        await bind_group(session, BOUND_GROUP, "阳光小区志愿者群", grid.id, admin, ADMIN)


async def fresh_engine(db_url: str) -> AsyncEngine:
    engine = create_engine(db_url)
    if not is_sqlite(db_url):
        async with engine.begin() as connection:
            await connection.execute(text("DROP SCHEMA public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
    await upgrade(engine)
    return engine


class ErrorLog(logging.Handler):
    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__(logging.ERROR)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    # Hypothesis drives a plain function: each example runs its steps on this loop.
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def test_hostile_updates_break_nothing_and_leak_nothing(
    db_url: str, loop: asyncio.AbstractEventLoop
) -> None:
    config = fuzz_config(db_url)
    engine = loop.run_until_complete(fresh_engine(db_url))
    factory = create_session_factory(engine)
    fuzzer = Fuzzer(config, factory)
    fuzzer.updates.tokens = loop.run_until_complete(seed(config, factory))
    handler = ErrorLog(fuzzer.errors)
    logging.getLogger().addHandler(handler)
    loop.run_until_complete(fuzzer.sender.start())

    async def run(example: list[tuple[Any, ...]]) -> None:
        await reseat(factory)
        fuzzer.held = {}
        for step in example:
            await fuzzer.feed(step)
        async with factory() as session:
            problems = await inconsistencies(session, fuzzer.bot.id, fuzzer.update_ids)
        assert not problems, problems

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(steps(), min_size=MIN_STEPS, max_size=MAX_STEPS))
    def examples(example: list[tuple[Any, ...]]) -> None:
        loop.run_until_complete(run(example))

    try:
        examples()
    finally:
        logging.getLogger().removeHandler(handler)
        loop.run_until_complete(fuzzer.sender.stop())
        loop.run_until_complete(fuzzer.storage.close())
        loop.run_until_complete(fuzzer.isolation.close())
        loop.run_until_complete(engine.dispose())
