"""The composition root: builds the Bot, the Dispatcher and the web app from a Config.

Nothing else creates a Bot or a Dispatcher; there are no module-level instances.
"""

import asyncio
import gc
import logging
import signal
from contextlib import suppress
from dataclasses import dataclass, field

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage, DefaultKeyBuilder
from aiogram.fsm.storage.memory import SimpleEventIsolation
from aiogram.fsm.storage.redis import RedisEventIsolation, RedisStorage
from aiogram.utils.i18n import I18n
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.commands import publish_commands
from bot.config import Config
from bot.console import ConsoleDeps, setup_console
from bot.forms import load_report_form
from bot.fsm_storage import SqlStorage
from bot.i18n import MemberI18nMiddleware, create_i18n
from bot.middlewares import (
    DbSessionMiddleware,
    FsmWritesMiddleware,
    MemberMiddleware,
    NulMiddleware,
    OnceMiddleware,
)
from bot.preflight import check_token, check_webhook, reach_redis
from bot.retry import RetryAfterMiddleware
from bot.seen_users import SeenUsersMiddleware
from bot.webhook import WebhookRequestHandler
from bot.worker_lock import WorkerLock
from handlers import build_root_router
from handlers.outbound import TelegramRenderer
from models.db import create_engine, create_session_factory
from models.messages import MessagesWaiting
from models.migrate import upgrade
from models.quiet_hours import quiet_hours
from scheduler import Clock
from scheduler.sender import OutboxSender

logger = logging.getLogger(__name__)

# Bounds memory and database connections when a burst of updates arrives at once.
MAX_CONCURRENT_UPDATES = 64


def build_bot(config: Config) -> Bot:
    token = check_token(config)
    session = AiohttpSession(timeout=config.telegram.request_timeout_s)
    if config.telegram.api_server:
        session.api = TelegramAPIServer.from_base(config.telegram.api_server)
    session.middleware(RetryAfterMiddleware())
    return Bot(token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))


def build_storage(
    config: Config, session_factory: async_sessionmaker[AsyncSession]
) -> tuple[BaseStorage, BaseEventIsolation]:
    key_builder = DefaultKeyBuilder(with_destiny=True)
    if config.redis.url:
        storage = RedisStorage.from_url(config.redis.url, key_builder=key_builder)
        return storage, RedisEventIsolation(storage.redis, key_builder=key_builder)
    # Without Redis each chat's updates reach one bot process (there is one, or replicas
    # behind a balancer that routes by chat), so in-process locks isolate two quick
    # updates of one user from each other.
    return SqlStorage(session_factory, key_builder), SimpleEventIsolation()


def build_dispatcher(
    config: Config,
    session_factory: async_sessionmaker[AsyncSession],
    i18n: I18n,
    storage: BaseStorage,
    events_isolation: BaseEventIsolation,
    messages_waiting: MessagesWaiting | None = None,
) -> Dispatcher:
    dispatcher = Dispatcher(
        storage=storage,
        events_isolation=events_isolation,
        config=config,
        session_factory=session_factory,
        # Checked here, at start: a bad form file stops the bot naming every bad field.
        report_form=load_report_form(config),
    )
    # aiogram closes the FSM storage as soon as polling stops, while handlers may still be
    # running; Application.close() closes it after they finish instead.
    dispatcher.shutdown.handlers[:] = [
        handler
        for handler in dispatcher.shutdown.handlers
        if handler.callback != dispatcher.fsm.close
    ]
    dispatcher.update.outer_middleware(NulMiddleware())
    # Its own short transaction, before the update's session opens (see bot.seen_users); a
    # second delivery of an update finds the user remembered and writes nothing.
    dispatcher.update.outer_middleware(
        SeenUsersMiddleware(session_factory, config.i18n.default_locale)
    )
    # The update's session opens before aiogram's FSM middleware reads the state, so that
    # the database storage reads and writes through it (one session per update).
    dispatcher.update.outer_middleware.unregister(dispatcher.fsm)
    dispatcher.update.outer_middleware(DbSessionMiddleware(session_factory, messages_waiting))
    dispatcher.update.outer_middleware(dispatcher.fsm)
    # A second delivery of an update stops here, found claimed by the state's read (inside
    # the user's lock); the claim is written in the update's first commit.
    dispatcher.update.outer_middleware(OnceMiddleware(session_factory))
    dispatcher.update.outer_middleware(FsmWritesMiddleware())
    dispatcher.update.outer_middleware(MemberMiddleware())
    MemberI18nMiddleware(i18n).setup(dispatcher)
    dispatcher.include_router(build_root_router())
    return dispatcher


def build_sender(
    config: Config, session_factory: async_sessionmaker[AsyncSession], bot: Bot, i18n: I18n
) -> OutboxSender:
    """The outbox sender, delivering through the Telegram adapter."""
    renderer = TelegramRenderer(
        i18n, paid_broadcast=config.outbox.allow_paid_broadcast, timezone=config.i18n.timezone
    )
    outbox = config.outbox
    return OutboxSender(
        session_factory,
        bot,
        outbox,
        renderer=renderer,
        command_centre_ids=config.admins.telegram_ids,
        quiet_hours=quiet_hours(
            outbox.quiet_hours, outbox.quiet_start, outbox.quiet_end, config.i18n.timezone
        ),
    )


@dataclass
class Application:
    """Everything one running bot process holds, built from a Config."""

    config: Config
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    bot: Bot
    dispatcher: Dispatcher
    i18n: I18n
    clock: Clock
    sender: OutboxSender
    worker_lock: WorkerLock = field(init=False)
    _work: asyncio.Task[None] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.worker_lock = WorkerLock(self.engine)

    @classmethod
    def build(cls, config: Config) -> "Application":
        bot = build_bot(config)
        engine = create_engine(config.database.url)
        session_factory = create_session_factory(engine)
        i18n = create_i18n(config.i18n.default_locale)
        storage, isolation = build_storage(config, session_factory)
        sender = build_sender(config, session_factory, bot, i18n)
        dispatcher = build_dispatcher(config, session_factory, i18n, storage, isolation, sender)
        clock = Clock(config, session_factory, bot, i18n, sender)
        return cls(config, engine, session_factory, bot, dispatcher, i18n, clock, sender)

    async def prepare(self) -> None:
        await upgrade(self.engine)
        await reach_redis(self.dispatcher.storage, self.config)
        await publish_commands(self.bot, self.config, self.i18n)

    @property
    def handles_updates(self) -> bool:
        return self.config.role in ("all", "web")

    @property
    def runs_workers(self) -> bool:
        return self.config.role in ("all", "worker")

    async def start_workers(self) -> None:
        """The clock and the outbox sender, when this process's role has them: in the
        background, since on PostgreSQL a worker may first wait for the worker lock."""
        if self.runs_workers and self._work is None:
            self._work = asyncio.create_task(self._lead_then_work(), name="worker")

    async def _lead_then_work(self) -> None:
        while True:
            await self.worker_lock.acquire()
            await self.sender.start()
            self.clock.start()
            await self.worker_lock.watch(self._stop_workers)
            if not self.worker_lock.can_be_lost:
                return
            # The lock was lost: wait to become the worker again.

    async def _stop_workers(self) -> None:
        await self.clock.stop()
        await self.sender.stop()

    async def close(self) -> None:
        await self.finish_updates_in_flight()
        if self._work is not None:
            self._work.cancel()
            with suppress(asyncio.CancelledError):
                await self._work
            self._work = None
        await self._stop_workers()
        await self.worker_lock.release()
        await self.dispatcher.storage.close()
        await self.dispatcher.fsm.events_isolation.close()
        await self.bot.session.close()
        await self.engine.dispose()

    async def finish_updates_in_flight(self, grace_s: float = 30.0) -> None:
        """Let handlers that are running finish before their storage and session close.

        aiogram keeps polling's update tasks in a private set and does not wait for them
        when polling stops.
        """
        tasks = list(getattr(self.dispatcher, "_handle_update_tasks", ()))
        if tasks:
            await asyncio.wait(tasks, timeout=grace_s)

    async def run_worker(self) -> None:
        """A worker: the clock and the sender, and no updates, until SIGTERM or SIGINT."""
        await self.start_workers()
        logger.info("worker started; waiting for the worker lock where there is one")
        await wait_for_stop_signal()

    async def run_polling(self) -> None:
        await self.bot.delete_webhook(drop_pending_updates=False)
        await self.start_workers()
        # Polling needs no web server, but the console does: a small one of its own.
        runner = web.AppRunner(self.console_app()) if self.config.console.enabled else None
        if runner is not None:
            await runner.setup()
            console = self.config.console
            await web.TCPSite(runner, console.host, console.port).start()
            logger.info("console listening on %s:%s/console/", console.host, console.port)
        try:
            await self.dispatcher.start_polling(
                self.bot,
                handle_signals=True,
                close_bot_session=False,
                tasks_concurrency_limit=MAX_CONCURRENT_UPDATES,
            )
        finally:
            if runner is not None:
                await runner.cleanup()

    def console_app(self) -> web.Application:
        """The web console and /health, without the webhook (polling mode)."""
        app = web.Application()
        app.router.add_get("/health", self.health)
        setup_console(app, ConsoleDeps(self.config, self.session_factory, self.i18n))
        return app

    async def run_webhook(self) -> None:
        webhook = self.config.webhook
        secret = check_webhook(self.config)
        runner = web.AppRunner(self.web_app(secret))
        await runner.setup()
        site = web.TCPSite(runner, webhook.host, webhook.port)
        await site.start()
        await self.bot.set_webhook(
            webhook.url,
            secret_token=secret,
            allowed_updates=self.dispatcher.resolve_used_update_types(),
        )
        await self.start_workers()
        logger.info("webhook listening on %s:%s%s", webhook.host, webhook.port, webhook.path)
        try:
            await wait_for_stop_signal()
        finally:
            await runner.cleanup()

    def web_app(self, secret: str) -> web.Application:
        app = web.Application()
        # Process before answering: a crash then makes Telegram send the update again
        # instead of losing it (the default answers first, then handles). A body that is
        # not an update gets 400.
        WebhookRequestHandler(
            self.dispatcher, self.bot, secret_token=secret, handle_in_background=False
        ).register(app, path=self.config.webhook.path)
        app.router.add_get("/health", self.health)
        if self.config.console.enabled:
            setup_console(app, ConsoleDeps(self.config, self.session_factory, self.i18n))
        return app

    async def health(self, _request: web.Request) -> web.Response:
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as error:
            logger.warning("health check: database unavailable: %s", type(error).__name__)
            return web.json_response({"status": "unavailable", "database": "down"}, status=503)
        return web.json_response({"status": "ok", "database": "ok"})


async def wait_for_stop_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop.set)
    try:
        await stop.wait()
    finally:
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            with suppress(Exception):
                loop.remove_signal_handler(signal_number)


# Objects allocated between two collections of the youngest generation (Python's default:
# 700). An update allocates thousands of short-lived objects (pydantic models, statements,
# rows) that reference counting frees; at 700 the collector ran several times per update.
YOUNG_GENERATION = 50_000


def settle_memory() -> None:
    """Once start-up is done: what it built lives as long as the process, so the collector
    stops walking it (``gc.freeze``), and collections come every ``YOUNG_GENERATION``
    allocations. Measured with ``benchmarks.updates`` (300 leads, 8 in flight, two runs
    each, loaded machine): 28–31 updates/s before, 41–50 after."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION, middle, old)


async def run(config: Config) -> None:
    check_token(config)
    if config.telegram.mode == "webhook":
        check_webhook(config)
    application = Application.build(config)
    try:
        await application.prepare()
        settle_memory()
        if not application.handles_updates:
            await application.run_worker()
        elif config.telegram.mode == "webhook":
            await application.run_webhook()
        else:
            await application.run_polling()
    finally:
        await application.close()
