"""The county's day as the emulated people play it, whichever way the service runs: in
this process (``python -m bot demo``) or as ``python -m bot run`` processes
(``python -m benchmarks.soak``). The people and the setup reach the service only through
the emulator and its database; how the service runs, and how the clock's hours pass, is
the subclass's part."""

import asyncio
import random
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

from aiogram.utils.i18n import I18n
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Config
from bot.demo import actors
from bot.demo.county import import_county, invite_posts, posts_top_down, report_yesterday
from bot.demo.tally import Progress, Tally
from bot.emulator import EmuUser, TelegramEmulator
from bot.forms import round_schedule
from bot.i18n import create_i18n
from models.access import scope_of
from models.chase import ChaseRun
from models.groups import bind_group
from models.org import Node
from models.outbox.table import OutboxMessage, OutboxStatus

TOKEN = "123456:DEMO-wuji-no-network"
ADMIN_ID = 900_001
NOTICE_TEXT = "今晚 20:00 起全员居家，明早 8 点核酸检测，请通知到每一户。"
T = TypeVar("T")


@dataclass
class DemoOptions:
    scale: float = 0.05
    speed: float = 20.0
    seed: int = 12
    out: Path | None = None
    # At most this many units of the county (a small day for tests); None: all at ``scale``.
    units: int | None = None


async def together(
    items: list[T], work: Callable[[T], Awaitable[object]], at_once: int = 24
) -> list[BaseException]:
    """Run ``work`` on every item, ``at_once`` at a time; returns the failures."""
    gate = asyncio.Semaphore(at_once)

    async def one(item: T) -> None:
        async with gate:
            await work(item)

    results = await asyncio.gather(*(one(item) for item in items), return_exceptions=True)
    return [result for result in results if isinstance(result, BaseException)]


def phone_of(telegram_id: int) -> str:
    return f"+86139{telegram_id % 100_000_000:08d}"


# The day runs on the real clock from a little after midnight until the evening in the
# county; begun outside these hours, it runs on a clock where it is morning.
DAY_STARTS = time(1, 0)
DAY_ENDS = time(21, 0)


def county_clock(config: Config, now: datetime | None = None) -> str | None:
    """Keep the county's time zone when the day fits in its clock's day from ``now``;
    otherwise set the demo's clock ([i18n] timezone, the rounds' with it) to a whole-hour
    zone where it is about nine in the morning, and say so in a line for the progress."""
    now = now or datetime.now(UTC)
    county = round_schedule_zone(config)
    local = now.astimezone(county)
    if DAY_STARTS <= local.time() < DAY_ENDS:
        return None
    hours = (9 - now.astimezone(UTC).hour) % 24
    hours = hours - 24 if hours > 14 else hours  # Etc/GMT-14 … Etc/GMT+12
    # The Etc zones' signs are POSIX's: Etc/GMT-8 is eight hours ahead of UTC.
    zone = "Etc/GMT" if hours == 0 else f"Etc/GMT{-hours:+d}"
    config.i18n.timezone = zone
    config.reports.timezone = ""
    return (
        f"it is {local:%H:%M} in {county.key}: the demo's day runs on a clock where it is "
        f"{now.astimezone(ZoneInfo(zone)):%H:%M} (UTC{hours:+d})"
    )


def round_times(config: Config, due_in_s: int) -> tuple[datetime, datetime]:
    """Today's round opens now and falls due ``due_in_s`` from now (whole minutes, as the
    schedule is written); returns (now, due) in UTC."""
    zone = round_schedule_zone(config)
    now = datetime.now(UTC)
    local = now.astimezone(zone)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    if (midnight - local).total_seconds() < due_in_s + 600:
        raise RuntimeError("the demo's day would cross midnight in the county: run it later")
    opens = (local - timedelta(minutes=1)).replace(second=0, microsecond=0)
    due = (local + timedelta(seconds=due_in_s + 59)).replace(second=0, microsecond=0)
    config.reports.open_time = opens.time()
    config.reports.close_time = opens.time()
    config.reports.due_time = due.time()
    config.chase.summary_time = time(18, 0) if due.hour < 17 else time(23, 50)
    return now, due.astimezone(UTC)


def round_schedule_zone(config: Config) -> ZoneInfo:
    return round_schedule(config).zone


class CountyDay:
    """The people's part of the day; ``emulator`` and ``config`` are set by the runner."""

    def __init__(self, options: DemoOptions, workdir: Path, progress: Progress) -> None:
        self.options = options
        self.workdir = workdir
        self.progress = progress
        self.random = random.Random(options.seed)
        self.tally = Tally()
        self.i18n: I18n = create_i18n("zh_Hans")
        self.fevers: set[int] = set()
        self.emulator: TelegramEmulator
        self.config: Config

    def set_clock(self) -> None:
        """Before the morning: the county's clock, or one where the day fits (``county_clock``)."""
        note = county_clock(self.config)
        if note:
            self.progress.say(note)

    def due_in_s(self) -> int:
        return 30 + len(self.unit_leads) // 8

    async def morning_before(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.progress.phase("import the roster")
        async with sessions() as session:
            self.tally.households = await import_county(
                session, self.options.scale, self.options.units
            )
            posts = await posts_top_down(session)
        self.progress.phase("yesterday's reports (the county's history)")
        async with sessions() as session:
            await report_yesterday(session, self.config, ADMIN_ID)
        self.tally.posts = len(posts)
        emulator = self.emulator
        admin = emulator.user(ADMIN_ID, "指挥部", language_code="zh")
        await admin.send("/start")
        # A few unit lead posts stay vacant for volunteers; a few people never register.
        unit_leads = [post for post in posts if post.level == "unit" and post.role == "lead"]
        claimable = set(
            self.random.sample([p.post_id for p in unit_leads], max(2, len(unit_leads) // 40))
        )
        never = {
            post.post_id
            for post in posts
            if post.post_id not in claimable
            and post.level == "unit"
            and self.random.random() < 0.03
        }
        self.tally.vacant_for_claims = len(claimable)
        self.tally.never_registered = len(never)
        self.holders: dict[int, EmuUser] = {}  # post id -> its holder
        self.posts = posts
        to_register = [post for post in posts if post.post_id not in claimable | never]
        self.progress.phase("an invite for every post", total=len(to_register))
        async with sessions() as session:
            invites = await invite_posts(session, [post.post_id for post in to_register], ADMIN_ID)
        self.progress.phase("registration by invite", total=len(to_register))

        async def register(post: object) -> None:
            assert hasattr(post, "post_id")
            telegram_id = 10_000_000 + post.post_id
            person = emulator.user(telegram_id, f"成员{post.post_id}", language_code="zh")
            await actors.register(person, invites[post.post_id], phone_of(telegram_id))
            self.holders[post.post_id] = person
            self.progress.advance()

        # Top-down, level by level, so each registration has a lead above to tell.
        for level in ("zone", "grid", "building", "unit"):
            failures = await together([p for p in to_register if p.level == level], register)
            self.tally.failures += failures
        self.tally.registered = len(self.holders)

        await self.volunteers_claim(sessions, claimable)
        self.unit_leads = [post for post in posts if post.level == "unit" and post.role == "lead"]

    async def volunteers_claim(
        self, sessions: async_sessionmaker[AsyncSession], claimable: set[int]
    ) -> None:
        """Each grid with a vacant unit lead post gets a volunteers' group, bound by the
        command centre (as /bind would); a volunteer claims there, the building lead
        approves."""
        emulator = self.emulator
        by_id = {post.post_id: post for post in self.posts}
        self.progress.phase("volunteers claim vacant posts", total=len(claimable))
        async with sessions() as session:
            scope = await scope_of(session, ADMIN_ID, [ADMIN_ID])
            groups = {}
            for post_id in sorted(claimable):
                unit = await session.get(Node, by_id[post_id].node_id)
                assert unit is not None and unit.grid_id is not None
                if unit.grid_id in groups:
                    continue
                grid = await session.get(Node, unit.grid_id)
                assert grid is not None
                group = emulator.group(-5_000_000 - grid.id, f"{grid.name}志愿者群")
                await bind_group(session, group.id, group.title, grid.id, scope, ADMIN_ID)
                groups[grid.id] = group
        self.groups = list(groups.values())
        volunteer_ids = iter(range(20_000_001, 30_000_000))
        building_leads = {
            post.node_id: self.holders[post.post_id]
            for post in self.posts
            if post.level == "building" and post.role == "lead" and post.post_id in self.holders
        }
        for post_id in sorted(claimable):
            post = by_id[post_id]
            async with sessions() as session:
                unit = await session.get(Node, post.node_id)
                assert unit is not None and unit.grid_id is not None
            volunteer = emulator.user(next(volunteer_ids), "志愿者", language_code="zh")
            try:
                if await actors.claim_in_group(
                    emulator, volunteer, groups[unit.grid_id], phone_of(volunteer.id)
                ):
                    self.tally.claims += 1
            except actors.DemoStepFailed as failure:
                self.tally.failures.append(failure)
            self.progress.advance()
        await asyncio.sleep(2)  # the claims reach the building leads through the outbox
        for lead in building_leads.values():
            self.tally.claims_approved += await actors.approve_claims(emulator, lead)
        self.holders_by_telegram = {user.id: user for user in self.holders.values()}

    def who_reports_when(self) -> tuple[list[EmuUser], list[EmuUser]]:
        """The unit leads who report on time and those who report late (the rest, about
        4 %, never do); a few on-time reports carry a fever."""
        leads = [
            self.holders[post.post_id] for post in self.unit_leads if post.post_id in self.holders
        ]
        self.random.shuffle(leads)
        late_count = max(1, len(leads) // 10)
        never_count = max(1, len(leads) // 25)
        on_time = leads[: max(0, len(leads) - late_count - never_count)]
        late = leads[len(on_time) : len(on_time) + late_count]
        self.fevers = {
            lead.id
            for lead in self.random.sample(on_time, max(1, len(on_time) // 20) if on_time else 0)
        }
        return on_time, late

    async def report(self, leads: list[EmuUser]) -> None:
        """Each lead reports their unit (16 at once); failures are tallied."""

        async def one(lead: EmuUser) -> None:
            await self.report_unit(lead)
            self.progress.advance()

        self.tally.failures += await together(leads, one, at_once=16)

    async def report_unit(self, lead: EmuUser) -> None:
        await actors.report_unit(
            self.emulator,
            lead,
            fever=lead.id in self.fevers,
            nobody_home=self.random.random() < 0.2,
        )

    async def ladder_runs(self, sessions: async_sessionmaker[AsyncSession]) -> int:
        async with sessions() as session:
            return int(
                await session.scalar(
                    select(func.count()).select_from(ChaseRun).where(ChaseRun.outcome == "fired")
                )
                or 0
            )

    async def handle_alerts_and_needs(self) -> None:
        """Someone above taps "I'll handle it" on each alert; the grid officer takes each
        need and closes it."""
        await asyncio.sleep(2)
        for person in self.holders.values():
            try:
                await self.handle_for(person)
            except (actors.DemoStepFailed, AssertionError) as failure:
                self.tally.failures.append(failure)

    async def handle_for(self, person: EmuUser) -> None:
        if await actors.acknowledge_latest(self.emulator, person, "🙋 我来处理"):
            self.tally.alert_taps += 1
        if await actors.acknowledge_latest(self.emulator, person, "🙋 我来办"):
            self.tally.need_taps += 1
            await asyncio.sleep(0.3)
            with suppress(Exception):
                await actors.acknowledge_latest(self.emulator, person, "✅ 已办结")
                last = person.messages()[-1]
                if "说明" in (last.text or "") or "备注" in (last.text or ""):
                    await person.send("已送药上门")

    async def notice(self, text: str = NOTICE_TEXT) -> None:
        """The command centre sends a notice to the whole county, asking for 收到; people
        press it as it reaches them."""
        await self.send_notice(text)
        await self.acknowledge_notice()

    async def send_notice(self, text: str) -> None:
        emulator = self.emulator
        admin = emulator.user(ADMIN_ID)
        admin.mark_read()
        await admin.send("/notice")
        await actors.reply_where(admin, actors.says("通知内容"))
        await admin.send(text)
        await admin.press(await actors.reply_where(admin, actors.has_button("全县")), "全县")
        levels = await actors.reply_where(admin, actors.has_button("下一步 ▶"))
        await admin.press(levels, "下一步 ▶")
        await admin.press(
            await actors.reply_where(admin, actors.has_button("需要确认")), "需要确认"
        )
        await admin.press(
            await actors.reply_where(admin, actors.has_button("立即发送")), "立即发送"
        )
        summary = await actors.reply_where(admin, actors.has_button("✅ 确认发送"))
        await admin.press(summary, "✅ 确认发送")

    async def acknowledge_notice(self) -> None:
        emulator = self.emulator
        people = list(self.holders.values())
        self.progress.phase("14:00 the notice: delivered and 收到", total=len(people))
        await asyncio.sleep(1)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        waiting = {person.id: person for person in people}
        while waiting and loop.time() < deadline:
            for person in list(waiting.values()):
                if any("收到" in actors.labels(m) for m in person.messages()):
                    del waiting[person.id]
                    self.progress.advance()
                    if self.random.random() < 0.9:
                        with suppress(Exception):
                            await actors.acknowledge_latest(emulator, person, "收到")
            await asyncio.sleep(0.2)

    async def drained(
        self,
        sessions: async_sessionmaker[AsyncSession],
        timeout: float = 60,  # noqa: ASYNC109 (a bound on the wait, reported, not raised)
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            async with sessions() as session:
                left = await session.scalar(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(OutboxMessage.status.in_([OutboxStatus.pending, OutboxStatus.sending]))
                )
            self.tally.outbox_left = int(left or 0)
            if not left:
                return
            await asyncio.sleep(0.5)
