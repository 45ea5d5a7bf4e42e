"""The day, phase by phase: the service runs as in production (Application, long polling,
its clock and outbox sender); emulated people talk to it. Steps hours apart on the county's
clock (the ladder after the due time, the 18:00 summary) are driven by calling the clock's
own jobs with a simulated "now"; the rest happens in real time."""

import asyncio
import random
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

from aiogram.utils.i18n import I18n
from pydantic import SecretStr
from sqlalchemy import func, select

from bot.app import Application
from bot.config import Config
from bot.demo import actors
from bot.demo.county import import_county, invite_posts, posts_top_down, report_yesterday
from bot.demo.tally import Progress, Tally, count_day, write_export
from bot.emulator import EmuUser, Limits, TelegramEmulator
from bot.forms import load_report_form, round_schedule
from bot.i18n import create_i18n
from models.access import scope_of
from models.chase import ChaseRun
from models.groups import bind_group
from models.org import Node
from models.outbox.table import OutboxMessage, OutboxStatus
from models.rounds import ReportRound
from scheduler.chase_jobs import send_daily_summary, sweep_ladder
from scheduler.report_jobs import open_due_round

TOKEN = "123456:DEMO-wuji-no-network"
ADMIN_ID = 900_001
T = TypeVar("T")


@dataclass
class DemoOptions:
    scale: float = 0.05
    speed: float = 20.0
    seed: int = 12
    out: Path | None = None


def demo_config(emulator: TelegramEmulator, db_url: str, speed: float) -> Config:
    config = Config()
    config.telegram.token = SecretStr(TOKEN)
    config.telegram.api_server = emulator.base_url
    config.telegram.bot_username = emulator.bot_user["username"]
    config.database.url = db_url
    config.admins.telegram_ids = [ADMIN_ID]
    # Telegram's limits hold in the emulator, in time ``speed`` times faster.
    config.outbox.rate_per_s *= speed
    config.outbox.private_chat_per_s *= speed
    config.outbox.group_chat_per_min *= speed
    config.outbox.poll_interval_s = 0.1
    config.outbox.quiet_hours = False
    config.chase.sweep_every_s = 10
    config.notices.progress_every_s = 2
    config.console.enabled = False
    return config


@asynccontextmanager
async def service(config: Config) -> AsyncIterator[Application]:
    """The bot as ``python -m bot run`` runs it: migrated, clock and sender, polling."""
    application = Application.build(config)
    await application.prepare()
    await application.start_workers()
    polling = asyncio.create_task(
        application.dispatcher.start_polling(
            application.bot, handle_signals=False, close_bot_session=False, polling_timeout=1
        )
    )
    try:
        yield application
    finally:
        with suppress(RuntimeError):
            await application.dispatcher.stop_polling()
        with suppress(asyncio.CancelledError):
            await asyncio.wait_for(polling, timeout=10)
        await application.close()


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
    def __init__(self, options: DemoOptions, workdir: Path, progress: Progress) -> None:
        self.options = options
        self.workdir = workdir
        self.progress = progress
        self.random = random.Random(options.seed)
        self.tally = Tally()
        self.i18n: I18n = create_i18n("zh_Hans")

    async def play(self) -> Tally:
        limits = Limits(time_scale=self.options.speed)
        async with TelegramEmulator(
            token=TOKEN,
            bot_username="wuji_demo_bot",
            bot_first_name="五级 Wuji (demo)",
            limits=limits,
        ) as emulator:
            self.emulator = emulator
            db_url = f"sqlite+aiosqlite:///{self.workdir / 'wuji-demo.sqlite3'}"
            config = demo_config(emulator, db_url, self.options.speed)
            self.config = config
            # Until the restart no round is open but yesterday's first two minutes, in which
            # its history is written (a round left open would shadow today's).
            config.reports.open_time = time(0, 0)
            config.reports.due_time = time(0, 1)
            config.reports.close_time = time(0, 2)
            async with service(config) as application:
                await self.morning_before(application)
            # The bot restarts overnight with the day's schedule (set from the real clock).
            self.progress.phase("restart with today's round")
            _now, due = round_times(config, due_in_s=self.due_in_s())
            async with service(config) as application:
                await self.the_day(application, due)
            self.tally.requests = list(emulator.requests)
        return self.tally

    def due_in_s(self) -> int:
        return 30 + len(self.unit_leads) // 8

    async def morning_before(self, application: Application) -> None:
        sessions = application.session_factory
        self.progress.phase("import the roster")
        async with sessions() as session:
            self.tally.households = await import_county(session, self.options.scale)
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

        await self.volunteers_claim(application, claimable)
        self.unit_leads = [post for post in posts if post.level == "unit" and post.role == "lead"]

    async def volunteers_claim(self, application: Application, claimable: set[int]) -> None:
        """Each grid with a vacant unit lead post gets a volunteers' group, bound by the
        command centre (as /bind would); a volunteer claims there, the building lead
        approves."""
        emulator = self.emulator
        by_id = {post.post_id: post for post in self.posts}
        self.progress.phase("volunteers claim vacant posts", total=len(claimable))
        async with application.session_factory() as session:
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
            async with application.session_factory() as session:
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

    async def the_day(self, application: Application, due: datetime) -> None:
        sessions = application.session_factory
        config = self.config
        await open_due_round(sessions, round_schedule(config), load_report_form(config))
        emulator = self.emulator
        leads = [
            self.holders[post.post_id] for post in self.unit_leads if post.post_id in self.holders
        ]
        self.random.shuffle(leads)
        late_count = max(1, len(leads) // 10)
        never_count = max(1, len(leads) // 25)
        on_time = leads[: len(leads) - late_count - never_count]
        late = leads[len(on_time) : len(on_time) + late_count]
        fevers = set(self.random.sample(range(len(on_time)), max(1, len(on_time) // 20)))

        async def report(indexed: tuple[int, EmuUser]) -> None:
            index, lead = indexed
            await actors.report_unit(
                emulator,
                lead,
                fever=index in fevers,
                nobody_home=self.random.random() < 0.2,
            )
            self.progress.advance()

        self.progress.phase("07:00–10:00 unit leads report", total=len(on_time))
        self.tally.failures += await together(list(enumerate(on_time)), report, at_once=16)
        await self.handle_alerts_and_needs()
        self.progress.phase("10:00 due: the ladder's first steps (on the real clock)")
        wait_s = (due - datetime.now(UTC)).total_seconds() + config.chase.sweep_every_s + 2
        await asyncio.sleep(max(0.0, wait_s))
        self.progress.phase("10:00–10:30 late reports", total=len(late))
        late_indexed = [(len(on_time) + i, lead) for i, lead in enumerate(late)]
        self.tally.failures += await together(late_indexed, report, at_once=16)

        self.progress.phase("10:30, 11:00, 12:00: the ladder climbs (simulated time)")
        for minutes in (30, 60, 120):
            await sweep_ladder(sessions, config, due + timedelta(minutes=minutes, seconds=1))
            application.sender.wake()
        self.progress.phase("14:00 the county's notice")
        await self.notice()
        self.progress.phase("18:00 the daily summary (simulated time)")
        schedule_zone = round_schedule_zone(config)
        local_due = due.astimezone(schedule_zone)
        summary_at = datetime.combine(
            local_due.date(), config.chase.summary_time, tzinfo=schedule_zone
        ) + timedelta(seconds=1)
        await send_daily_summary(
            sessions, config, self.i18n, max(summary_at, datetime.now(UTC)).astimezone(UTC)
        )
        application.sender.wake()
        self.progress.phase("the outbox drains")
        await self.drained(application)
        async with sessions() as session:
            report_round = await session.scalar(
                select(ReportRound).order_by(ReportRound.date.desc()).limit(1)
            )
            assert report_round is not None
            await count_day(session, report_round, self.tally)
            self.tally.export = await write_export(
                session, report_round, self.options.out or Path.cwd()
            )
        self.tally.chase_runs_fired = await self.ladder_runs(application)

    async def ladder_runs(self, application: Application) -> int:
        async with application.session_factory() as session:
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

    async def notice(self) -> None:
        emulator = self.emulator
        admin = emulator.user(ADMIN_ID)
        admin.mark_read()
        await admin.send("/notice")
        await actors.reply_where(admin, actors.says("通知内容"))
        await admin.send("今晚 20:00 起全员居家，明早 8 点核酸检测，请通知到每一户。")
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
        application: Application,
        timeout: float = 60,  # noqa: ASYNC109 (a bound on the wait, reported, not raised)
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            async with application.session_factory() as session:
                left = await session.scalar(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(OutboxMessage.status.in_([OutboxStatus.pending, OutboxStatus.sending]))
                )
            self.tally.outbox_left = int(left or 0)
            if not left:
                return
            await asyncio.sleep(0.5)


async def run_demo(options: DemoOptions) -> int:
    progress = Progress()
    with tempfile.TemporaryDirectory(prefix="wuji-demo-") as workdir:
        progress.start()
        try:
            tally = await CountyDay(options, Path(workdir), progress).play()
        finally:
            progress.stop()
    tally.print_table()
    return 0 if not tally.failures else 1
