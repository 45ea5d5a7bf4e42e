"""Security checks: the bot token stays out of logs and error texts on every error path; an
import or export cannot plant a live spreadsheet formula; a member who loses a post loses
its access with the very next update, whatever the member cache holds.

Webhook mode's secret is tested in ``tests/handlers/test_webhook.py``: a missing or wrong
secret gets 401 and is not handled
(``test_a_wrong_or_missing_secret_gets_401_and_is_not_handled``), and the bot refuses to
start without one or with a short one (``test_webhook_mode_refuses_a_missing_or_short_secret``).
"""

import argparse
import csv
import io
import logging
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

import openpyxl
import pytest
from aiogram import Bot, Dispatcher
from aiogram.methods import AnswerCallbackQuery, SendDocument
from aiogram.types import BufferedInputFile
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import SecretStr
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import build_bot, build_dispatcher, build_sender, build_storage
from bot.cli import main
from bot.cli_commands import invite_command
from bot.config import Config
from bot.export_command import export_command
from bot.forms import consequences, load_report_form, round_schedule
from bot.i18n import create_i18n
from bot.logging_setup import setup_logging
from handlers.registration import LeaveStep
from models.access import scope_of
from models.messages import Text
from models.org import Household, Post
from models.outbox.table import OutboxMessage, OutgoingMessage, enqueue
from models.posts import node_by_path
from models.report_saving import save_report
from models.reports import Reporter
from models.roster import RosterSource, import_roster
from models.roster_parse import RosterValidationError
from models.rounds import ReportHow, current_round
from models.spreadsheets import FORMULA_STARTS
from tests.fixtures import (
    UNIT,
    RecordingSession,
    a_user,
    callback_update,
    hold_post,
    import_example_county,
    message_update,
    recording_bot,
)
from tests.fuzz_support import FuzzSession
from tests.handlers.fixtures import ADMIN_ID

TOKEN = "123456:AAHs3cretPart-of_the_TOKEN0123456789"
SECRET_PART = TOKEN.split(":", 1)[1]
LEAD = a_user(3001, "单元长", "zh-hans")
ADMIN = a_user(ADMIN_ID, "指挥部")


# --- the token --------------------------------------------------------------------------


@pytest.fixture
def log() -> Iterator[io.StringIO]:
    """Everything logged, through the handler ``python -m bot`` installs (DEBUG and up)."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    setup_logging("DEBUG", [TOKEN])
    buffer = io.StringIO()
    cast(logging.StreamHandler[Any], root.handlers[0]).setStream(buffer)
    try:
        yield buffer
    finally:
        root.handlers[:], root.level = saved[0], saved[1]


@pytest.fixture
async def echoing_api() -> AsyncIterator[TestServer]:
    """A Bot API that fails every call, quoting the URL it was called at (percent-encoded,
    as some proxies and HTTP libraries write it) in its error description."""

    async def fail(request: web.Request) -> web.Response:
        return web.json_response(
            {"ok": False, "error_code": 400, "description": f"Bad Request: {quote(request.path)}"},
            status=400,
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fail)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


def secured_config(db_url: str, api: TestServer) -> Config:
    config = Config()
    config.telegram.token = SecretStr(TOKEN)
    config.telegram.api_server = str(api.make_url("")).rstrip("/")
    config.database.url = db_url
    config.admins.telegram_ids = [ADMIN_ID]
    config.outbox.max_attempts = 1
    config.outbox.quiet_hours = False
    return config


def assert_no_token(text: str) -> None:
    assert TOKEN not in text
    assert SECRET_PART not in text
    assert quote(SECRET_PART) not in text


async def test_a_failing_send_and_a_failing_reply_keep_the_token_out_of_logs_and_errors(
    log: io.StringIO,
    echoing_api: TestServer,
    db_url: str,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    config = secured_config(db_url, echoing_api)
    bot = build_bot(config)
    i18n = create_i18n("zh_Hans")
    try:
        # The outbox: the failure is logged and stored with the row.
        async with session_factory() as session:
            await enqueue(session, [OutgoingMessage(chat_id=5001, content=Text("cancel.nothing"))])
            await session.commit()
        await build_sender(config, session_factory, bot, i18n).run_until_idle(30)
        async with session_factory() as session:
            (row,) = await session.scalars(select(OutboxMessage))
        assert row.status == "failed" and row.last_error
        assert_no_token(row.last_error)

        # A direct reply: the handler's failure, then the apology's, are logged.
        storage, isolation = build_storage(config, session_factory)
        dispatcher = build_dispatcher(config, session_factory, i18n, storage, isolation)
        await dispatcher.feed_update(bot, message_update(bot, LEAD, "/help"))
        await storage.close()
    finally:
        await bot.session.close()
    logged = log.getvalue()
    assert "Bad Request" in logged and "update" in logged  # the error paths did run
    assert_no_token(logged)


@pytest.mark.parametrize(
    "toml",
    [
        f'[telegram]\ntoken = ["{TOKEN}"]\n',
        f'[telegram]\ntoken = "{TOKEN}"\ntokn = "{TOKEN}"\n',
        f'[telegram]\ntoken = "{TOKEN}"\nmode = "{TOKEN}"\n',
        f'telegram = "{TOKEN}"\n',
        f'[telegram]\ntoken = "{TOKEN}\n',
        f'[telegram]\ntoken = "{TOKEN}"\n[webhook]\nport = "{TOKEN}"\n',
    ],
)
def test_a_config_error_names_the_key_and_never_the_token(
    toml: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(toml, encoding="utf-8")
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        assert main(["--config", str(path), "status"]) == 2
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
    error = capsys.readouterr().err
    assert error.startswith("wuji: ") and "config" in error
    assert_no_token(error)


# --- spreadsheets -----------------------------------------------------------------------

PLANTED = ['=HYPERLINK("http://evil.example/x","点我")', "+1+1", "-2+3", "@SUM(A1:A9)"]
FORMULA_ZONE = "=片区"
FORMULA_UNIT = f"{FORMULA_ZONE}/+小区/-1号楼/@1单元"


def roster_files() -> list[RosterSource]:
    """A zone whose every name starts like a formula, and a lead named like one."""
    households = "community,zone,grid,building,unit,room\n" + "".join(
        f"=社区,{FORMULA_ZONE},+小区,-1号楼,@1单元,{room}\n" for room in ("=101", "+102", "-103")
    )
    people = io.StringIO()
    csv.writer(people).writerows(
        [
            ["path", "role", "name", "phone"],
            [FORMULA_UNIT, "lead", PLANTED[0], "13909719999"],
            [FORMULA_ZONE, "officer", PLANTED[3], "+86 139 0971 9998"],
        ]
    )
    return [
        RosterSource("households.csv", households.encode()),
        RosterSource("people.csv", people.getvalue().encode()),
    ]


def xlsx_roster(rows: list[list[str]]) -> RosterSource:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)  # openpyxl stores "=…" as a live formula
    buffer = io.BytesIO()
    book.save(buffer)
    return RosterSource("households.xlsx", buffer.getvalue())


def xlsx_texts(content: bytes) -> list[str]:
    """Every text cell; fails on a formula anywhere, as a cell type or in the sheet XML."""
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        for name in archive.namelist():
            if name.startswith("xl/worksheets/"):
                xml = archive.read(name).decode()
                assert "<f>" not in xml and "<f " not in xml, name
    texts = []
    for sheet in openpyxl.load_workbook(io.BytesIO(content)).worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    texts.append(cell.value)
    return texts


def csv_texts(content: bytes) -> list[str]:
    cells = [cell for row in csv.reader(io.StringIO(content.decode("utf-8-sig"))) for cell in row]
    live = [cell for cell in cells if cell.startswith(FORMULA_STARTS)]
    assert not live, live
    return cells


def assert_planted(texts: list[str], planted: list[str], quoted: bool = True) -> None:
    """Each planted text is there, as text: after a leading quote, or (``quoted`` False,
    where the cell's type says text) as it is."""
    for text in planted:
        assert ("'" + text) in texts or (not quoted and text in texts), (
            text,
            [t for t in texts if t[:1] in "'=+-@"],
        )


async def test_a_tab_or_carriage_return_is_trimmed_at_a_cells_ends_and_refused_inside(
    session: AsyncSession,
) -> None:
    header = "community,zone,grid,building,unit,room\n"
    inside = header + '社区,片区,小区,1号楼,1单元,101\n社区,片区,小区,1号楼,1单元,"1\t=1+1"\n'
    inside += '社区,片区,小区,1号楼,"1\r@单元",102\n'
    with pytest.raises(RosterValidationError) as refused:
        await import_roster(session, [RosterSource("households.csv", inside.encode())])
    problems = [str(problem) for problem in refused.value.errors]
    assert any(p.startswith("households.csv:3:") and "U+0009" in p for p in problems), problems
    assert any(p.startswith("households.csv:4:") and "U+000D" in p for p in problems), problems

    at_the_start = header + '社区,片区,小区,1号楼,"\r@单元","\t=1+1"\n'
    await import_roster(session, [RosterSource("households.csv", at_the_start.encode())])
    rooms = await session.scalars(select(Household.room))
    assert list(rooms) == ["=1+1"]  # exported as text: see the next test

    # An XLSX roster's live formulas are not taken for names: their cells count as empty.
    header = ["community", "zone", "grid", "building", "unit", "room"]
    formulas = xlsx_roster([header, ["社区", "=1+1", "=SUM(1)", "楼", "单元", "=9"]])
    with pytest.raises(RosterValidationError) as refused:
        await import_roster(session, [formulas])
    problems = [str(problem) for problem in refused.value.errors]
    assert problems == [
        f"households.xlsx:2: empty cell in column {column}" for column in ("zone", "grid", "room")
    ]


async def test_names_and_answers_that_look_like_formulas_are_exported_as_text(
    db_url: str,
    session_factory: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    config = Config()
    config.database.url = db_url
    config.telegram.bot_username = "wuji_bot"
    config.admins.telegram_ids = [ADMIN_ID]
    async with session_factory() as session:
        await import_roster(session, roster_files())
        lead = await hold_post(session, LEAD["id"], FORMULA_UNIT, name=PLANTED[1])
        report_round = await current_round(
            session, round_schedule(config), load_report_form(config)
        )
        assert report_round is not None
        unit = await node_by_path(session, FORMULA_UNIT)
        assert unit is not None
        household = await session.scalar(select(Household.id).where(Household.unit_id == unit.id))
        assert household is not None
        answers = {"people_at_home": 1, "symptoms": 0, "test_status": "negative"}
        answers |= {"isolation": "none", "vulnerable": [], "needs": ["other"]}
        answers |= {"needs_other": PLANTED[2], "note": PLANTED[0]}
        await save_report(
            session,
            Reporter(LEAD["id"], lead.id, await scope_of(session, LEAD["id"], [])),
            consequences(config),
            round_id=report_round.id,
            household_id=household,
            revision=0,
            how=ReportHow.form,
            answers=answers,
        )
        day = report_round.date
    # In the chat: /export by the command centre, and /invite's sheet of vacant posts.
    bot = Bot(TOKEN, session=FuzzSession())
    storage, isolation = build_storage(config, session_factory)
    i18n = create_i18n("zh_Hans")
    dispatcher = build_dispatcher(config, session_factory, i18n, storage, isolation)
    for command in ("/export", f"/invite {FORMULA_ZONE}"):
        await dispatcher.feed_update(bot, message_update(bot, ADMIN, command))
    await storage.close()
    documents = [
        c for c in cast(RecordingSession, bot.session).calls if isinstance(c, SendDocument)
    ]
    assert len(documents) == 2, cast(RecordingSession, bot.session).calls
    files = [cast(BufferedInputFile, document.document).data for document in documents]
    exported = xlsx_texts(files[0])
    assert_planted(exported, [PLANTED[0], PLANTED[2], FORMULA_UNIT, "+102", "-103"])
    assert_planted(xlsx_texts(files[1]), [PLANTED[3], FORMULA_ZONE], quoted=False)

    # On the server: python -m bot export (XLSX and CSV) and invite --all --out.
    for suffix in ("xlsx", "csv"):
        out = tmp_path / f"export.{suffix}"
        arguments = argparse.Namespace(round_date=day, node=None, out=out)
        assert await export_command(config, arguments) == 0
        texts = xlsx_texts(out.read_bytes()) if suffix == "xlsx" else csv_texts(out.read_bytes())
        assert_planted(texts, [PLANTED[0], PLANTED[2], FORMULA_UNIT, "+102", "-103"])
    sheet = tmp_path / "invites.xlsx"
    arguments = argparse.Namespace(path=FORMULA_ZONE, role=None, all=True, out=sheet)
    assert await invite_command(config, arguments) == 0
    assert_planted(xlsx_texts(sheet.read_bytes()), [PLANTED[3], FORMULA_ZONE], quoted=False)


# --- a lost post ------------------------------------------------------------------------


async def lose_post(
    how: str,
    dispatcher: Dispatcher,
    bot: Bot,
    session_factory: async_sessionmaker[AsyncSession],
    post_id: int,
) -> None:
    if how == "revoke":
        await dispatcher.feed_update(bot, message_update(bot, ADMIN, f"/revoke {UNIT} lead"))
        # /revoke asks first: the command centre confirms.
        asked = cast(RecordingSession, bot.session).messages[-1]
        assert asked.reply_markup is not None
        confirm = asked.reply_markup.inline_keyboard[0][0].callback_data
        assert confirm is not None
        await dispatcher.feed_update(bot, callback_update(bot, ADMIN, confirm, asked))
    elif how == "leave":
        await dispatcher.feed_update(bot, message_update(bot, LEAD, "/leave"))
        shown = cast(RecordingSession, bot.session).messages[-1]
        confirm = LeaveStep(post_id=post_id, confirm=True).pack()
        await dispatcher.feed_update(bot, callback_update(bot, LEAD, confirm, shown))
    else:  # another process (a webhook replica, the command line): this one hears nothing
        async with session_factory() as session:
            await session.execute(update(Post).where(Post.id == post_id).values(holder_id=None))
            await session.commit()


@pytest.mark.parametrize("how", ["revoke", "leave", "elsewhere"])
async def test_a_member_who_loses_a_post_is_refused_at_the_very_next_update(
    how: str, db_url: str, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    config = Config()
    config.database.url = db_url
    config.admins.telegram_ids = [ADMIN_ID]
    async with session_factory() as session:
        await import_example_county(session)
        await hold_post(session, LEAD["id"], UNIT)
        post_id = await session.scalar(select(Post.id).where(Post.holder_id.is_not(None)).limit(1))
    assert post_id is not None
    bot = recording_bot()
    calls = cast(RecordingSession, bot.session)
    storage, isolation = build_storage(config, session_factory)
    i18n = create_i18n("zh_Hans")
    dispatcher = build_dispatcher(config, session_factory, i18n, storage, isolation)
    no_scope = i18n.gettext("directory.no_scope", locale="zh_Hans")
    # Holding the post: /report shows the unit (and the member is in the cache).
    await dispatcher.feed_update(bot, message_update(bot, LEAD, "/report"))
    sheet = calls.messages[-1]
    assert sheet.text != no_scope and sheet.reply_markup is not None
    buttons = [b.callback_data for row in sheet.reply_markup.inline_keyboard for b in row]
    household = next(data for data in buttons if data and data.startswith("rh:"))

    await lose_post(how, dispatcher, bot, session_factory, post_id)
    before = len(calls.calls)
    await dispatcher.feed_update(bot, message_update(bot, LEAD, "/report"))
    (reply,) = calls.sent()[-1:]
    assert reply.text == no_scope and calls.calls[before:] == [reply]
    # A button of the sheet shown while holding the post opens nothing.
    await dispatcher.feed_update(bot, callback_update(bot, LEAD, household, sheet))
    after = calls.calls[before + 1 :]
    assert [type(call) for call in after] == [AnswerCallbackQuery], after
    assert cast(AnswerCallbackQuery, after[0]).show_alert
    await storage.close()
