"""The command line's commands, each importing what it needs when it runs (``bot.cli``
parses and dispatches). Only ``run``, and ``invite`` without ``[telegram] bot_username``,
talk to Telegram and so import aiogram."""

import argparse
import json
import logging
import sys
import threading
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession
from tqdm import tqdm

from bot.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CommandFailed, no_node_line, output_file
from bot.config import Config, ConfigError
from models.db import create_engine, create_session_factory
from models.migrate import pending_revisions, upgrade

if TYPE_CHECKING:
    from aiogram.exceptions import TelegramAPIError

logger = logging.getLogger(__name__)

TELEGRAM = "api.telegram.org"
NETWORK_FIX = "check the network, or set [telegram] api_server (TELEGRAM_API_SERVER)"


async def run_command(config: Config, _arguments: argparse.Namespace) -> int:
    from aiogram.exceptions import TelegramAPIError

    from bot.app import run

    where = make_url(config.database.url).render_as_string(hide_password=True)
    logger.info("Wuji starting: role %s, %s, database %s", config.role, config.telegram.mode, where)
    try:
        await run(config)
    except TelegramAPIError as error:
        raise telegram_failure(error, config, "start") from None
    logger.info("Wuji stopped")
    return EXIT_OK


def telegram_failure(
    error: "TelegramAPIError", config: Config, doing: str, fix: str = NETWORK_FIX
) -> Exception:
    """One line for a Telegram call that failed: a refused token is the configuration's
    fault (exit 2), an unreachable server the network's (exit 1)."""
    from aiogram.exceptions import TelegramNetworkError, TelegramUnauthorizedError

    server = config.telegram.api_server or TELEGRAM
    if isinstance(error, TelegramUnauthorizedError):
        return ConfigError(
            f"{server} refuses the bot token: check BOT_TOKEN or [telegram] token "
            "(a token from @BotFather)"
        )
    if isinstance(error, TelegramNetworkError):
        return CommandFailed(
            f"cannot reach Telegram at {server} to {doing} ({error.message}): {fix}"
        )
    return CommandFailed(f"{server} refused {type(error.method).__name__}: {error.message}")


async def migrate_command(config: Config, _arguments: argparse.Namespace) -> int:
    engine = create_engine(config.database.url)
    try:
        pending = await pending_revisions(engine)
        await upgrade(engine)
    finally:
        await engine.dispose()
    if pending:
        print(f"applied {len(pending)} migration(s), {pending[0]} to {pending[-1]}")
    print("database is up to date")
    return EXIT_OK


class ProgressBars:
    """The progress callback of a long import: one bar per stage on stderr, drawn only when
    stderr is a terminal. Parsing calls it from a worker thread, writing from the loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stage: str | None = None
        self._bar: tqdm[None] | None = None

    def __call__(self, stage: str, advance: int, total: int | None) -> None:
        with self._lock:
            if stage != self._stage or self._bar is None:
                self._close()
                self._stage = stage
                self._bar = tqdm(
                    desc=stage, unit=" rows", total=total, file=sys.stderr, disable=None
                )
            if advance:
                self._bar.update(advance)

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


async def import_command(config: Config, arguments: argparse.Namespace) -> int:
    from models.roster import (
        RosterLimits,
        RosterSource,
        RosterValidationError,
        import_roster,
        plan_prune,
    )

    limits = RosterLimits(config.roster.max_rows, config.roster.max_xlsx_bytes)

    sources = []
    for path in arguments.files:
        try:
            sources.append(RosterSource(name=path.name, content=path.read_bytes()))
        except OSError as error:
            print(f"{path}: cannot read: {error.strerror}", file=sys.stderr)
            return EXIT_FAILED

    async def work(session: AsyncSession) -> int:
        bars = ProgressBars()
        try:
            if arguments.prune:
                plan = await plan_prune(session, sources, limits=limits)
                if not _confirm_prune(plan, assume_yes=arguments.yes):
                    print("nothing imported")
                    return EXIT_FAILED
            report = await import_roster(
                session, sources, prune=arguments.prune, limits=limits, progress=bars
            )
        except RosterValidationError as error:
            bars.close()
            for problem in error.errors:
                print(problem, file=sys.stderr)
            print(f"{len(error.errors)} problem(s); nothing was imported", file=sys.stderr)
            return EXIT_FAILED
        finally:
            bars.close()
        print(
            f"imported: {report.zones} zones, {report.grids} grids, {report.buildings} buildings, "
            f"{report.units} units, {report.households} households, {report.posts} posts, "
            f"{report.people} people"
        )
        if report.pruned_nodes or report.pruned_households:
            print(
                f"pruned: {len(report.pruned_nodes)} nodes, {report.pruned_households} households"
            )
        return EXIT_OK

    return await _with_session(config, work)


def _confirm_prune(plan: object, *, assume_yes: bool) -> bool:
    nodes: list[str] = getattr(plan, "nodes", [])
    households: list[str] = getattr(plan, "households", [])
    held: list[str] = getattr(plan, "held_posts", [])
    if not nodes and not households:
        return True
    print("--prune would remove:")
    for path in nodes:
        print(f"  node {path}")
    for household in households:
        print(f"  household {household}")
    if held:
        # The import would refuse them: said before anyone is asked to confirm.
        print(
            "wuji: cannot prune: posts among them are held (free each with /revoke PATH role):",
            file=sys.stderr,
        )
        for post in held:
            print(f"  {post}", file=sys.stderr)
        return False
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        print("not confirmed: run again with --yes to remove these", file=sys.stderr)
        return False
    return input("Remove them? [y/N] ").strip().lower() in {"y", "yes"}


async def seed_command(config: Config, arguments: argparse.Namespace) -> int:
    from models.roster import RosterValidationError
    from models.seed import foreign_nodes, seed_demo, seeded_scale, write_households_csv

    if arguments.households_per_unit < 1 or arguments.scale < 1:
        print("wuji: --households-per-unit and --scale must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    if arguments.csv:
        rows = write_households_csv(arguments.csv, arguments.households_per_unit, arguments.scale)
        print(f"wrote {rows} households to {arguments.csv}")
        return EXIT_OK

    async def work(session: AsyncSession) -> int:
        foreign = await foreign_nodes(session, arguments.scale)
        larger = await seeded_scale(session) if foreign else None
        if larger is not None:
            raise CommandFailed(
                f"the database holds the seed county at --scale {larger}, larger than "
                f"--scale {arguments.scale}: run seed-demo --scale {larger} to add to it, or "
                "give a smaller one a file of its own, "
                "DATABASE_URL=sqlite+aiosqlite:///seed.db python -m bot seed-demo"
            )
        if foreign:
            raise CommandFailed(
                f"the database holds another county ({foreign[0]} is not in the seed county) "
                "and seed-demo builds only into an empty database: give it a file of its own, "
                "DATABASE_URL=sqlite+aiosqlite:///seed.db python -m bot seed-demo"
            )
        bars = ProgressBars()
        try:
            report = await seed_demo(
                session, arguments.households_per_unit, arguments.scale, progress=bars
            )
        except RosterValidationError as error:
            raise CommandFailed(
                f"the seed county does not fit the database ({error.errors[0]}; "
                f"{len(error.errors)} problem(s)); nothing was written"
            ) from None
        finally:
            bars.close()
        added = (report.zones, report.grids, report.buildings, report.units)
        print(
            f"seeded: {report.zones} zones, {report.grids} grids, {report.buildings} buildings, "
            f"{report.units} units, {report.households} households, {report.posts} posts"
            + ("" if any((*added, report.households, report.posts)) else " (all there already)")
        )
        return EXIT_OK

    return await _with_session(config, work)


async def status_command(config: Config, arguments: argparse.Namespace) -> int:
    from models.status import county_status

    async def work(session: AsyncSession) -> int:
        counts = await county_status(session)
        if arguments.json:
            print(json.dumps(counts))
        else:
            width = max(len(name) for name in counts)
            for name, value in counts.items():
                shown = f"{value:>9,}" if isinstance(value, int) else f"{value or '-':>9}"
                print(f"{name:<{width}}  {shown}")
        return EXIT_OK

    return await _with_session(config, work)


async def invite_command(config: Config, arguments: argparse.Namespace) -> int:
    from bot.invite_sheet import invite_sheet
    from models.invite_batch import invite_to_post, invite_vacant_posts
    from models.org import Role
    from models.posts import node_by_path
    from models.refusals import Refused

    if arguments.all == bool(arguments.role):
        print("wuji: give either --role lead|officer or --all", file=sys.stderr)
        return EXIT_USAGE
    if arguments.out and not arguments.all:
        print("wuji: --out goes with --all (one post's link is printed)", file=sys.stderr)
        return EXIT_USAGE
    if arguments.out and arguments.out.suffix.lower() != ".xlsx":
        print("wuji: --out must end in .xlsx", file=sys.stderr)
        return EXIT_USAGE
    username = await bot_username(config)
    ttl = timedelta(days=config.invites.ttl_days)

    def link_for(token: str) -> str:
        # A deep link (https://core.telegram.org/api/links#bot-links); tokens are URL-safe.
        return f"https://t.me/{username}?start={token}"

    async def work(session: AsyncSession) -> int:
        node = await node_by_path(session, arguments.path)
        if node is None:
            print(await no_node_line(session, arguments.path), file=sys.stderr)
            return EXIT_FAILED
        if arguments.role:
            try:
                row = await invite_to_post(session, node, Role(arguments.role), ttl, None, link_for)
            except Refused as refused:
                print(f"wuji: {english(refused.key, **refused.params)}", file=sys.stderr)
                return EXIT_FAILED
            print(row.link)
            return EXIT_OK
        if not arguments.out:
            for row in await invite_vacant_posts(session, node, ttl, None, link_for):
                print(f"{row.path}\t{row.role}\t{row.roster_name}\t{row.roster_phone}\t{row.link}")
            return EXIT_OK
        # Issuing withdraws the posts' earlier links: the sheet that holds the new ones must
        # be writable first.
        with output_file(arguments.out) as write:
            rows = await invite_vacant_posts(session, node, ttl, None, link_for)
            write(invite_sheet(rows))
        print(f"wrote {len(rows)} invites to {arguments.out}")
        return EXIT_OK

    return await _with_session(config, work)


async def demo_command(_config: Config, arguments: argparse.Namespace) -> int:
    from bot.demo import DemoOptions, run_demo

    logging.getLogger().setLevel(logging.WARNING)  # the progress line and table say it all

    options = DemoOptions(scale=arguments.scale, speed=arguments.speed, out=arguments.out)
    return await run_demo(options)


def english(key: str, **params: object) -> str:
    from bot.catalogs import text

    return text("en", key).format(**params)


async def bot_username(config: Config) -> str:
    if config.telegram.bot_username:
        return config.telegram.bot_username  # without its @: the config drops it
    if not config.telegram.token.get_secret_value():
        raise ConfigError(
            "invite links need the bot's username: set [telegram] bot_username in "
            'config.toml (e.g. bot_username = "wuji_county_bot"), or give a token '
            "(BOT_TOKEN) so that it is asked from Telegram"
        )
    from aiogram.exceptions import TelegramAPIError

    from bot.app import build_bot

    bot = build_bot(config)
    try:
        me = await bot.get_me()
    except TelegramAPIError as error:
        fix = "set [telegram] bot_username in config.toml (invite then needs no network)"
        raise telegram_failure(error, config, "ask the bot's username", fix) from None
    finally:
        await bot.session.close()
    return me.username or ""


async def _with_session(config: Config, work: Callable[[AsyncSession], Awaitable[int]]) -> int:
    """Commands that read or change the roster first bring the schema up to date."""
    engine = create_engine(config.database.url)
    try:
        await upgrade(engine)
        async with create_session_factory(engine)() as session:
            return await work(session)
    finally:
        await engine.dispose()
