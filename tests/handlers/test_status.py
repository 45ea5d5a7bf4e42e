"""/status, /progress and /export end to end, and ``python -m bot export``: a subtree's
numbers after some reports, quality flags, a group that sees counts only, a spreadsheet that
opens with the right rows and no live formula, an export outside one's scope refused."""

import asyncio
import csv
import io
import json
import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import openpyxl
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import Application
from bot.config import Config
from bot.emulator.client import EmuUser
from bot.emulator.models import BotMessage
from bot.forms import DEFAULT_FORM_PATH, consequences, round_schedule
from models.access import scope_of
from models.base import utcnow
from models.form_parse import load_form
from models.org import Household, Member, Node, Post
from models.posts import node_by_path
from models.report_saving import save_report
from models.reports import Reporter
from models.rounds import HouseholdReport, ReportHow, current_round, open_round
from models.system import AuditEntry
from tests.emulator import TelegramEmulator
from tests.handlers.fixtures import ADMIN_ID, GROUP_ID, group_texts, open_chats
from tests.response_fixtures import (
    GRID,
    GRID_LEAD,
    OUTSIDER,
    PEOPLE,
    UNIT,
    UNIT_LEAD,
    seat_county,
)
from tests.test_cli import wuji

SAME_UNIT = "县卫健局片区/阳光小区/1号楼/2单元"
# A note a resident's lead might type, which a spreadsheet would run as a formula.
FORMULA = '=HYPERLINK("http://evil.example/x","点我")'
CALM = {
    "people_at_home": 2,
    "symptoms": 0,
    "test_status": "negative",
    "isolation": "none",
    "vulnerable": [],
    "needs": [],
}


@dataclass(frozen=True)
class Reported:
    day: date
    households: int
    done: int
    grid_households: int
    same_unit_households: int


async def reported_round(
    session_factory: async_sessionmaker[AsyncSession], config: Config
) -> Reported:
    """Today's round: in 1单元, 101 a full form with a need and a formula for a note, 102
    nobody home, 201 a full form saved two seconds after it was begun; 2单元 all "no change"
    today and in the six rounds before."""
    form = load_form(DEFAULT_FORM_PATH)
    schedule = round_schedule(config)
    now = utcnow()
    async with session_factory() as session:
        today = await current_round(session, schedule, form)
        assert today is not None
        rounds = [today] + [
            await open_round(session, schedule, form, today.date - timedelta(days=back))
            for back in range(1, 7)
        ]
        same_unit = await node_by_path(session, SAME_UNIT)
        unit = await node_by_path(session, UNIT)
        grid = await node_by_path(session, GRID)
        assert same_unit is not None and unit is not None and grid is not None
        await session.execute(
            update(HouseholdReport)
            .where(
                HouseholdReport.round_id.in_([r.id for r in rounds]),
                HouseholdReport.unit_id == same_unit.id,
            )
            .values(status="reported", how=ReportHow.unit_no_change.value, answers=CALM)
        )
        await session.commit()
        member = await session.scalar(select(Member).where(Member.telegram_id == UNIT_LEAD))
        assert member is not None
        reporter = Reporter(UNIT_LEAD, member.id, await scope_of(session, UNIT_LEAD, []))
        rooms = dict(
            (
                await session.execute(
                    select(Household.room, Household.id).where(Household.unit_id == unit.id)
                )
            ).all()
        )
        saves = [
            ("101", ReportHow.form, {**CALM, "needs": ["medicine"], "note": FORMULA}, 90),
            ("102", ReportHow.nobody_home, None, None),
            ("201", ReportHow.form, CALM, 2),
        ]
        for room, how, answers, took in saves:
            await save_report(
                session,
                reporter,
                consequences(config),
                round_id=today.id,
                household_id=rooms[room],
                revision=0,
                how=how,
                answers=answers,
                started_at=now - timedelta(seconds=took) if took else None,
                now=now,
            )
        households = int(await session.scalar(select(func.count(Household.id))) or 0)
        same = int(
            await session.scalar(
                select(func.count(Household.id)).where(Household.unit_id == same_unit.id)
            )
            or 0
        )
        in_grid = int(
            await session.scalar(
                select(func.count(Household.id)).where(Household.grid_id == grid.id)
            )
            or 0
        )
        return Reported(today.date, households, 3 + same, in_grid, same)


async def next_reply(user: EmuUser) -> BotMessage:
    """The bot's next answer to ``user``, past the need tickets the round's reports opened:
    those come through the outbox whenever the sender gets to them."""
    while True:
        message = await user.next_message(timeout=10)
        if not (message.text or message.caption or "").startswith("🧾"):
            return message


async def test_status_shows_the_subtree_s_numbers_and_quality_flags(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
    config: Config,
) -> None:
    await open_chats(emulator, session_factory)
    reported = await reported_round(session_factory, config)

    admin = emulator.user(user_id=ADMIN_ID)
    admin.mark_read()
    await admin.send("/status")
    text = (await next_reply(admin)).text or ""
    assert "全县" in text and reported.day.isoformat() in text
    assert f"已报 {reported.done}/{reported.households} 户" in text
    assert "未处理告警：0 · 未办结需求：1" in text
    assert "县卫健局片区" in text and "县教育局片区" in text
    assert "连续 7 轮全部“无变化”的单元：1 个" in text
    assert "· 县卫健局片区/阳光小区/1号楼/2单元" in text
    assert "本轮有过快填写的单元：1 个" in text
    assert "· 县卫健局片区/阳光小区/1号楼/1单元：1 份" in text
    assert len(text) <= 4096

    grid_lead = emulator.user(user_id=GRID_LEAD)
    grid_lead.mark_read()
    await grid_lead.send("/status")
    text = (await next_reply(grid_lead)).text or ""
    assert GRID in text
    assert f"已报 {reported.done}/{reported.grid_households} 户" in text
    # Children are buildings, flagged units named below the grid.
    assert "1号楼：" in text and "· 1号楼/2单元" in text and "· 1号楼/1单元：1 份" in text
    # Never an answer, a room or a note.
    assert FORMULA not in text and "阴性" not in text

    # A path outside one's posts says the same as one that does not exist.
    await grid_lead.send("/status 县教育局片区")
    refused = (await next_reply(grid_lead)).text or ""
    assert "县教育局片区" in refused and "已报" not in refused

    async with session_factory() as session:
        viewed = await session.scalar(
            select(func.count(AuditEntry.id)).where(AuditEntry.action == "round_status.viewed")
        )
    assert viewed == 2


def form_labels() -> set[str]:
    """Every field and answer label of the form, in both languages: none may reach a group."""
    form = load_form(DEFAULT_FORM_PATH)
    labels: set[str] = set()
    for field in form.fields:
        labels |= set(field.labels.values())
        for choice in field.choices:
            labels |= set(choice.labels.values())
    # One-character labels ("无") occur in ordinary words.
    return {label for label in labels if len(label) > 1}


async def test_progress_in_a_group_shows_counts_only(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
    config: Config,
) -> None:
    await open_chats(emulator, session_factory)
    reported = await reported_round(session_factory, config)
    group = emulator.group(GROUP_ID, "阳光小区志愿者群")
    volunteer = emulator.user(user_id=8101, first_name="志愿者", language_code="zh")
    volunteer.mark_read(group)
    await volunteer.command("progress", chat=group, mention=True)
    text = (await volunteer.next_message(chat=group)).text or ""
    assert "阳光小区" in text
    assert f"已报 {reported.done}/{reported.grid_households} 户" in text
    await volunteer.command("status", chat=group, mention=True)
    assert "已报" in ((await volunteer.next_message(chat=group)).text or "")
    await volunteer.command("export", chat=group, mention=True)
    assert "私聊" in ((await volunteer.next_message(chat=group)).text or "")

    shown = group_texts(emulator, GROUP_ID)
    leaked = [label for label in form_labels() if label in shown]
    assert leaked == []
    assert "HYPERLINK" not in shown
    for room in ("101", "102", "201", "202", "301", "302"):
        assert not re.search(rf"(?<!\d){room}(?!\d)", shown), room
    for _path, _role, _telegram_id, name in PEOPLE:
        assert name not in shown


def cells_of(content: bytes, sheet_index: int = 0) -> tuple[list[str], list[list[object]]]:
    workbook = openpyxl.load_workbook(io.BytesIO(content))
    sheet = workbook.worksheets[sheet_index]
    rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    return [str(header) for header in rows[0]], rows[1:]


async def test_export_sends_a_spreadsheet_of_the_round_with_no_live_formula(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
    config: Config,
) -> None:
    await open_chats(emulator, session_factory)
    reported = await reported_round(session_factory, config)
    grid_lead = emulator.user(user_id=GRID_LEAD)
    grid_lead.mark_read()
    await grid_lead.send("/export")
    document = await next_reply(grid_lead)
    assert document.document is not None
    assert reported.day.isoformat() in (document.caption or "")
    content = emulator.download(document.document)

    workbook = openpyxl.load_workbook(io.BytesIO(content))
    assert workbook.sheetnames == ["住户报告", "需求", "岗位到岗"]
    header, rows = cells_of(content)
    assert header[:6] == ["路径", "户号", "状态", "方式", "报告时间", "告警"]
    assert "在家人数" in header and "备注" in header and "需求" in header
    assert len(rows) == reported.grid_households
    assert all(str(row[0]).startswith(GRID + "/") for row in rows)
    by_room = {(row[0], row[1]): row for row in rows}
    first = by_room[(UNIT, "101")]
    assert first[2] == "已报" and first[3] == "填写"
    assert first[header.index("检测情况")] == "阴性"
    assert first[header.index("需求")] == "药品"
    assert first[header.index("在家人数")] == 2
    assert first[header.index("备注")] == "'" + FORMULA
    assert by_room[(UNIT, "102")][2] == "无人在家"
    assert by_room[(UNIT, "202")][2] == "未报"
    assert by_room[(SAME_UNIT, "101")][3] == "全部无变化"
    note_cell = workbook.worksheets[0].cell(
        row=_row_of(rows, UNIT, "101") + 2, column=header.index("备注") + 1
    )
    assert note_cell.data_type == "s"

    _need_header, needs = cells_of(content, 1)
    assert [(row[1], row[2], row[3], row[4]) for row in needs] == [(UNIT, "101", "药品", "待接单")]
    _coverage_header, coverage = cells_of(content, 2)
    async with session_factory() as session:
        posts = await session.scalar(
            select(func.count(Post.id))
            .join(Node, Node.id == Post.node_id)
            .where(Node.path.startswith(GRID))
        )
    assert len(coverage) == posts
    assert all(str(row[0]).startswith(GRID) for row in coverage)
    assert {row[3] for row in coverage} == {"在岗", "空缺"}

    async with session_factory() as session:
        audited = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "export.round"))
        )
    assert [entry.actor_telegram_id for entry in audited] == [GRID_LEAD]
    assert audited[0].detail["reports"] == reported.grid_households


def _row_of(rows: list[list[object]], path: str, room: str) -> int:
    return next(index for index, row in enumerate(rows) if row[0] == path and row[1] == room)


async def test_an_export_outside_one_s_scope_is_refused(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
    config: Config,
) -> None:
    await open_chats(emulator, session_factory)
    await reported_round(session_factory, config)
    outsider = emulator.user(user_id=OUTSIDER)
    outsider.mark_read()
    await outsider.send(f"/export {GRID}")
    reply = await outsider.next_message()
    assert reply.document is None
    assert GRID in (reply.text or "")
    await asyncio.sleep(0)
    async with session_factory() as session:
        exports = await session.scalar(
            select(func.count(AuditEntry.id)).where(AuditEntry.action == "export.round")
        )
    assert exports == 0


async def test_the_cli_exports_a_round_to_xlsx_and_csv(
    session_factory: async_sessionmaker[AsyncSession],
    config: Config,
    db_url: str,
    tmp_path: Path,
) -> None:
    await seat_county(session_factory)
    reported = await reported_round(session_factory, config)
    environment = {"DATABASE_URL": db_url}
    day = reported.day.isoformat()

    workbook_path = tmp_path / "round.xlsx"
    result = await asyncio.to_thread(
        wuji, "export", "--round", day, "--out", str(workbook_path), cwd=tmp_path, env=environment
    )
    assert result.returncode == 0, result.stderr
    header, rows = cells_of(workbook_path.read_bytes())
    assert len(rows) == reported.households
    note = header.index("备注")
    assert [row[note] for row in rows if row[note]] == ["'" + FORMULA]

    csv_path = tmp_path / "grid.csv"
    result = await asyncio.to_thread(
        wuji,
        "export",
        "--round",
        day,
        "--node",
        GRID,
        "--out",
        str(csv_path),
        cwd=tmp_path,
        env=environment,
    )
    assert result.returncode == 0, result.stderr
    lines = list(csv.reader(io.StringIO(csv_path.read_text(encoding="utf-8-sig"))))
    assert lines[0] == ["住户报告"]
    header = lines[1]
    reports = lines[2 : 2 + reported.grid_households]
    assert all(line[0].startswith(GRID + "/") for line in reports)
    assert [line[header.index("备注")] for line in reports if line[header.index("备注")]] == [
        "'" + FORMULA
    ]
    assert lines[2 + reported.grid_households] == []
    assert lines[3 + reported.grid_households] == ["需求"]
    # No cell of the file starts as a formula would.
    for line in lines:
        for cell in line:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell

    status = await asyncio.to_thread(wuji, "status", "--json", cwd=tmp_path, env=environment)
    assert status.returncode == 0, status.stderr
    counts = json.loads(status.stdout)
    assert counts["round_date"] == day
    assert counts["households_reported"] == reported.done
    assert (counts["alerts_open"], counts["needs_open"]) == (0, 1)
    plain = await asyncio.to_thread(wuji, "status", cwd=tmp_path, env=environment)
    assert day in plain.stdout and "needs_open" in plain.stdout

    missing = await asyncio.to_thread(
        wuji,
        "export",
        "--round",
        "2001-01-01",
        "--out",
        str(csv_path),
        cwd=tmp_path,
        env=environment,
    )
    assert missing.returncode == 1 and "2001-01-01" in missing.stderr
    # It names the rounds there are, for the next try.
    assert f"no round on 2001-01-01: the newest rounds kept are {day}" in missing.stderr
    # The earlier file stays as it was when a later export of it fails.
    assert csv_path.read_text(encoding="utf-8-sig").startswith("住户报告")
    # A file that cannot be written fails before the export is made, so it is not audited.
    unwritable = tmp_path / "no such folder" / "round.xlsx"
    refused = await asyncio.to_thread(
        wuji, "export", "--round", day, "--out", str(unwritable), cwd=tmp_path, env=environment
    )
    assert refused.returncode == 1 and f"cannot write {unwritable}" in refused.stderr
    nowhere = await asyncio.to_thread(
        wuji,
        *("export", "--round", day, "--node", "", "--out", "x.csv"),
        cwd=tmp_path,
        env=environment,
    )
    assert nowhere.returncode == 1 and "no node at path ''" in nowhere.stderr
    assert not (tmp_path / "x.csv").exists()
    async with session_factory() as session:
        via = list(
            await session.scalars(
                select(AuditEntry.detail).where(AuditEntry.action == "export.round")
            )
        )
    assert [detail["via"] for detail in via] == ["cli", "cli"]
