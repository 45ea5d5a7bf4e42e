"""``python -m bot [--config PATH] COMMAND``: the one entry point of Wuji."""

import argparse
import asyncio
import json
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiogram.utils.deep_linking import create_deep_link
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from tqdm import tqdm

from bot.config import Config, ConfigError, load_config
from bot.export_command import add_export_parser, export_command
from bot.invite_sheet import invite_sheet
from bot.logging_setup import setup_logging
from models.db import create_engine, create_session_factory
from models.migrate import upgrade

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="Wuji (五级): the county's five-level community response bot.",
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="TOML config file (default: ./config.toml if present, else built-in defaults)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("run", help="run the bot (long polling, or webhook per config)")
    commands.add_parser("migrate", help="apply pending database migrations")

    import_parser = commands.add_parser("import", help="import a roster file (.csv or .xlsx)")
    import_parser.add_argument("files", type=Path, nargs="+", metavar="FILE")
    import_parser.add_argument(
        "--prune",
        action="store_true",
        help="also remove nodes and households missing from the files (asks first)",
    )
    import_parser.add_argument("--yes", action="store_true", help="prune without asking")

    seed_parser = commands.add_parser("seed-demo", help="build the seed county of Datong")
    seed_parser.add_argument("--households-per-unit", type=int, default=12)
    seed_parser.add_argument("--scale", type=int, default=1)
    seed_parser.add_argument(
        "--csv", type=Path, help="write the households file here instead of the database"
    )

    invite_parser = commands.add_parser("invite", help="print or export invite links")
    invite_parser.add_argument("path", metavar="PATH", help="zone/grid/building/unit")
    invite_parser.add_argument("--role", choices=["lead", "officer"], help="one post's link")
    invite_parser.add_argument(
        "--all", action="store_true", help="every vacant post in the subtree of PATH"
    )
    invite_parser.add_argument(
        "--out", type=Path, help="with --all: write an .xlsx to send by SMS or WeChat"
    )

    status_parser = commands.add_parser("status", help="count what the database holds")
    status_parser.add_argument("--json", action="store_true", help="print one JSON object")
    add_export_parser(commands)
    demo_parser = commands.add_parser("demo", help="play a day of the county on an emulator")
    demo_parser.add_argument("--scale", type=float, default=0.05, help="1: the seed county")
    demo_parser.add_argument("--speed", type=float, default=20.0, help="Telegram time speed-up")
    demo_parser.add_argument("--out", type=Path, help="where the export goes (default: .)")
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    try:
        config = load_config(arguments.config)
    except ConfigError as error:
        print(f"wuji: {error}", file=sys.stderr)
        return EXIT_USAGE
    secrets = [
        config.telegram.token.get_secret_value(),
        config.webhook.secret_token.get_secret_value(),
    ]
    setup_logging(config.logging.level, secrets)
    command = COMMANDS[arguments.command]
    try:
        return asyncio.run(command(config, arguments))
    except ConfigError as error:
        print(f"wuji: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (OSError, SQLAlchemyError) as error:
        where = make_url(config.database.url).render_as_string(hide_password=True)
        reason = getattr(error, "orig", None) or error
        print(f"wuji: cannot use the database {where}: {reason}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_FAILED


async def run_command(config: Config, _arguments: argparse.Namespace) -> int:
    from bot.app import run

    await run(config)
    return EXIT_OK


async def migrate_command(config: Config, _arguments: argparse.Namespace) -> int:
    engine = create_engine(config.database.url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
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
    if not nodes and not households:
        return True
    print("--prune would remove:")
    for path in nodes:
        print(f"  node {path}")
    for household in households:
        print(f"  household {household}")
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        print("not confirmed: run again with --yes to remove these", file=sys.stderr)
        return False
    return input("Remove them? [y/N] ").strip().lower() in {"y", "yes"}


async def seed_command(config: Config, arguments: argparse.Namespace) -> int:
    from models.seed import seed_demo, write_households_csv

    if arguments.households_per_unit < 1 or arguments.scale < 1:
        print("wuji: --households-per-unit and --scale must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    if arguments.csv:
        rows = write_households_csv(arguments.csv, arguments.households_per_unit, arguments.scale)
        print(f"wrote {rows} households to {arguments.csv}")
        return EXIT_OK

    async def work(session: AsyncSession) -> int:
        bars = ProgressBars()
        try:
            report = await seed_demo(
                session, arguments.households_per_unit, arguments.scale, progress=bars
            )
        finally:
            bars.close()
        print(
            f"seeded: {report.zones} zones, {report.grids} grids, {report.buildings} buildings, "
            f"{report.units} units, {report.households} households, {report.posts} posts"
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
    from models.invite_batch import invite_to_post, invite_vacant_posts
    from models.org import Role
    from models.posts import node_by_path
    from models.refusals import Refused

    if arguments.all == bool(arguments.role):
        print("wuji: give either --role lead|officer or --all", file=sys.stderr)
        return EXIT_USAGE
    username = await bot_username(config)
    ttl = timedelta(days=config.invites.ttl_days)

    def link_for(token: str) -> str:
        return create_deep_link(username, "start", token)

    async def work(session: AsyncSession) -> int:
        node = await node_by_path(session, arguments.path)
        if node is None:
            print(f"wuji: no node at path {arguments.path!r}", file=sys.stderr)
            return EXIT_FAILED
        if arguments.role:
            try:
                row = await invite_to_post(session, node, Role(arguments.role), ttl, None, link_for)
            except Refused as refused:
                print(f"wuji: {english(refused.key, **refused.params)}", file=sys.stderr)
                return EXIT_FAILED
            print(row.link)
            return EXIT_OK
        rows = await invite_vacant_posts(session, node, ttl, None, link_for)
        if arguments.out:
            arguments.out.write_bytes(invite_sheet(rows))
            print(f"wrote {len(rows)} invites to {arguments.out}")
        else:
            for row in rows:
                print(f"{row.path}\t{row.role}\t{row.roster_name}\t{row.roster_phone}\t{row.link}")
        return EXIT_OK

    return await _with_session(config, work)


async def demo_command(_config: Config, arguments: argparse.Namespace) -> int:
    import logging

    from bot.demo import DemoOptions, run_demo

    logging.getLogger().setLevel(logging.WARNING)  # the progress line and table say it all

    options = DemoOptions(scale=arguments.scale, speed=arguments.speed, out=arguments.out)
    return await run_demo(options)


def english(key: str, **params: object) -> str:
    from bot.i18n import create_i18n

    return create_i18n("en").gettext(key, locale="en").format(**params)


async def bot_username(config: Config) -> str:
    if config.telegram.bot_username:
        return config.telegram.bot_username.lstrip("@")
    from bot.app import build_bot

    if not config.telegram.token.get_secret_value():
        raise ConfigError(
            "invite links need the bot's username: set [telegram] bot_username in "
            "config.toml, or a token (BOT_TOKEN) so that it can be asked from Telegram"
        )
    bot = build_bot(config)
    try:
        me = await bot.get_me()
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


COMMANDS: dict[str, Callable[[Config, argparse.Namespace], Coroutine[Any, Any, int]]] = {
    "run": run_command,
    "migrate": migrate_command,
    "import": import_command,
    "seed-demo": seed_command,
    "status": status_command,
    "invite": invite_command,
    "demo": demo_command,
    "export": export_command,
}
