"""``python -m bot [--config PATH] COMMAND``: the one entry point of Wuji.

The parser imports nothing heavy, and a command imports its code only when it runs:
``--help`` and the commands that do not talk to Telegram never load aiogram.
"""

import argparse
import asyncio
import importlib
import sys
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.export_command import add_export_parser

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.config import Config

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# As a shell reports a command stopped by Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130

# Each command's coroutine (config, arguments) → exit status, as module and name, so that
# only the module of the command that runs is imported.
COMMANDS = {
    "run": ("bot.cli_commands", "run_command"),
    "migrate": ("bot.cli_commands", "migrate_command"),
    "import": ("bot.cli_commands", "import_command"),
    "seed-demo": ("bot.cli_commands", "seed_command"),
    "status": ("bot.cli_commands", "status_command"),
    "invite": ("bot.cli_commands", "invite_command"),
    "demo": ("bot.cli_commands", "demo_command"),
    "export": ("bot.export_command", "export_command"),
}
Command = Callable[["Config", argparse.Namespace], Coroutine[Any, Any, int]]


class CommandFailed(Exception):
    """A command that cannot go on, said in one line that names the cause and the fix."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


async def no_node_line(session: "AsyncSession", path: str, shown: int = 10) -> str:
    """The line for a path that names no node, with what is there, so that the next try
    can be right: the deepest leading part that is a node and the names under it, or the
    county's top nodes."""
    from models.posts import nearest_node

    parent, names = await nearest_node(session, path)
    listed = ", ".join(names[:shown])
    if len(names) > shown:
        listed += f" and {len(names) - shown} more"
    if parent is None:
        there = (
            f"the county's top nodes are {listed} (a path reads zone/grid/building/unit)"
            if names
            else "no node at all: import a roster first"
        )
    elif names:
        there = f"{parent.path} holds {listed}"
    else:
        there = f"{parent.path} is a {parent.level} and has nothing under it"
    return f"wuji: no node at path {path!r}: {there}"


@contextmanager
def output_file(path: Path) -> Iterator[Callable[[bytes], None]]:
    """The command's output file, opened before the command does its work: a path that
    cannot be written (no such folder, a folder, no permission) fails the command before it
    commits anything (invites issued, an export audited), not after. Yields the function
    that writes the file's content; a file the command created is removed if it fails."""
    existed = path.exists()
    try:
        # Appending opens without emptying: an earlier file stays until the content is ready.
        handle = path.open("ab")
    except OSError as error:
        raise CommandFailed(f"cannot write {path}: {error.strerror or error}") from None
    written = False

    def write(content: bytes) -> None:
        nonlocal written
        handle.truncate(0)
        handle.write(content)
        written = True

    try:
        with handle:
            yield write
    finally:
        if not written and not existed:
            path.unlink(missing_ok=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        # As it was started: the installed ``wuji`` script, or ``python -m bot``.
        prog="wuji" if Path(sys.argv[0]).name == "wuji" else "python -m bot",
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

    seed_parser = commands.add_parser(
        "seed-demo", help="build the seed county of Datong (into an empty database)"
    )
    seed_parser.add_argument("--households-per-unit", type=int, default=12)
    seed_parser.add_argument("--scale", type=int, default=1)
    seed_parser.add_argument(
        "--csv", type=Path, help="write the households file here instead of the database"
    )

    invite_parser = commands.add_parser(
        "invite", help="print or export invite links (needs [telegram] bot_username)"
    )
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
    from alembic.util import CommandError
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from bot.config import ConfigError, load_config
    from bot.logging_setup import setup_logging

    try:
        config = load_config(arguments.config)
    except ConfigError as error:
        return _fail(str(error), EXIT_USAGE, [])
    secrets = [
        config.telegram.token.get_secret_value(),
        config.webhook.secret_token.get_secret_value(),
    ]
    setup_logging(config.logging.level, secrets)
    module, name = COMMANDS[arguments.command]
    command: Command = getattr(importlib.import_module(module), name)
    try:
        return asyncio.run(command(config, arguments))
    except ConfigError as error:
        return _fail(str(error), EXIT_USAGE, secrets)
    except CommandFailed as error:
        return _fail(error.message, error.code, secrets)
    except (OSError, SQLAlchemyError) as error:
        if not _from_database(error):
            # A port already taken, a file that cannot be written: said as it is.
            return _fail(str(error), EXIT_FAILED, secrets)
        where = make_url(config.database.url).render_as_string(hide_password=True)
        return _fail(f"cannot use the database {where}: {_reason(error)}", EXIT_FAILED, secrets)
    except CommandError as error:
        # A migration this version does not have: the database was written by a newer one.
        where = make_url(config.database.url).render_as_string(hide_password=True)
        return _fail(
            f"cannot migrate the database {where} ({error}): it was written by a newer "
            "Wuji; run that version, or point DATABASE_URL at a database of this one",
            EXIT_FAILED,
            secrets,
        )
    except KeyboardInterrupt:
        print("wuji: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _reason(error: BaseException) -> str:
    """What went wrong with the database, in words: a driver's own error where SQLAlchemy
    wrapped one; a timeout, which says nothing of itself, said as one."""
    reason = getattr(error, "orig", None) or error
    if isinstance(reason, TimeoutError) and not str(reason):
        return "no answer in time (is a database server listening at that address?)"
    return str(reason) or type(reason).__name__


# Where an error raised unwrapped (a refused connection is a plain OSError) comes from the
# database: its drivers, SQLAlchemy, the migrations and Wuji's engine set-up.
DATABASE_MODULES = ("sqlalchemy", "asyncpg", "aiosqlite", "sqlite3", "alembic", "models.db")


def _from_database(error: BaseException) -> bool:
    from sqlalchemy.exc import SQLAlchemyError

    if isinstance(error, SQLAlchemyError):
        return True
    frame = error.__traceback__
    while frame is not None:
        module = str(frame.tb_frame.f_globals.get("__name__", ""))
        if any(module == name or module.startswith(f"{name}.") for name in DATABASE_MODULES):
            return True
        frame = frame.tb_next
    return False


def _fail(message: str, code: int, secrets: list[str]) -> int:
    from bot.logging_setup import RedactFilter

    print(f"wuji: {RedactFilter(secrets).redact(message)}", file=sys.stderr)
    return code
