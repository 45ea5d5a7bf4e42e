"""``python -m bot export --round YYYY-MM-DD [--node PATH] --out FILE.xlsx|.csv``: a round's
reports, needs and post coverage, of the county or of one node's subtree, for the command
centre. Audited like an export from chat. Nothing here imports aiogram at module level: the
catalogs are loaded inside the command, as the CLI's other commands do."""

import argparse
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.config import Config

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
FORMATS = (".xlsx", ".csv")


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def add_export_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = commands.add_parser(
        "export", help="write a round's reports, needs and post coverage to .xlsx or .csv"
    )
    parser.add_argument("--round", dest="round_date", type=_day, required=True, metavar="DATE")
    parser.add_argument("--node", metavar="PATH", help="one node's subtree (default: the county)")
    parser.add_argument("--out", type=Path, required=True, metavar="FILE.xlsx|FILE.csv")


async def export_command(config: "Config", arguments: argparse.Namespace) -> int:
    # Imported here: bot.cli imports this module for its parser.
    from bot.cli import output_file

    out: Path = arguments.out
    if out.suffix.lower() not in FORMATS:
        print("wuji: --out must end in .xlsx or .csv", file=sys.stderr)
        return EXIT_USAGE
    with output_file(out) as write:
        return await _export(config, arguments, write)


async def _export(
    config: "Config", arguments: argparse.Namespace, write: Callable[[bytes], None]
) -> int:
    from bot.catalogs import text
    from bot.cli import no_node_line
    from models.db import create_engine, create_session_factory
    from models.exports import export_round, export_sheets
    from models.migrate import upgrade
    from models.posts import node_by_path
    from models.rounds import latest_round_dates, round_on
    from models.spreadsheets import csv_bytes, workbook_bytes

    out: Path = arguments.out
    locale = config.i18n.default_locale
    engine = create_engine(config.database.url)
    try:
        await upgrade(engine)
        async with create_session_factory(engine)() as session:
            report_round = await round_on(session, arguments.round_date)
            if report_round is None:
                kept = ", ".join(day.isoformat() for day in await latest_round_dates(session))
                print(
                    f"wuji: no round on {arguments.round_date.isoformat()}: "
                    + (f"the newest rounds kept are {kept}" if kept else "no round kept yet"),
                    file=sys.stderr,
                )
                return EXIT_FAILED
            nodes = None
            if arguments.node is not None:
                node = await node_by_path(session, arguments.node)
                if node is None:
                    print(await no_node_line(session, arguments.node), file=sys.stderr)
                    return EXIT_FAILED
                nodes = [node]
            export = await export_round(session, report_round, nodes, locale, None, via="cli")
    finally:
        await engine.dispose()

    def word(key: str) -> str:
        return text(locale, key)

    sheets = export_sheets(export, word, config.reports.timezone or config.i18n.timezone)
    content = workbook_bytes(sheets) if out.suffix.lower() == ".xlsx" else csv_bytes(sheets)
    write(content)
    print(
        f"wrote {out}: {len(export.reports.rows)} household reports, "
        f"{len(export.needs.rows)} needs, {len(export.coverage.rows)} posts"
    )
    return EXIT_OK
