"""``python -m bot demo`` at a tiny scale, as the command runs it (``run_demo``): the day's
table adds up, the export opens with the county's three sheets, and nothing goes wrong on the
way (exit 0: no step a person would find broken; no traceback printed, no error logged)."""

import logging
import re
from pathlib import Path

import pytest
from openpyxl import load_workbook

from bot.demo import DemoOptions, run_demo


def table_of(printed: str) -> dict[str, str]:
    """The day's table, row name → its value as printed."""
    rows: dict[str, str] = {}
    for line in printed.split("A day of the county", 1)[1].splitlines():
        parts = re.split(r"\s{2,}", line.strip())
        if len(parts) == 2:
            rows[parts[0]] = parts[1]
    return rows


def figures(value: str) -> list[int]:
    """ "1,335 / 94" → [1335, 94]."""
    return [int(number.replace(",", "")) for number in re.findall(r"\d[\d,]*", value)]


async def test_a_tiny_day_of_the_county_adds_up(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    # The seed county's first zone (708 households), Telegram's limits 50 times faster.
    exit_code = await run_demo(DemoOptions(scale=0.02, speed=50, out=tmp_path))
    printed = capfd.readouterr()

    assert "Traceback" not in printed.out + printed.err
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    assert exit_code == 0, printed.out[-2000:]

    table = table_of(printed.out)
    rows = {name: figures(value) for name, value in table.items() if name != "export"}
    [households] = rows["households"]
    [on_time], [late], [missing] = (
        rows["reports on time"],
        rows["reports late"],
        rows["reports missing"],
    )
    # Every household of the played part is counted once: on time, late or missing.
    assert households == 708
    assert on_time + late + missing == households
    assert on_time > 0 and late > 0 and missing > 0
    [nobody_home] = rows["of which nobody home (reported)"]
    assert nobody_home <= on_time + late
    posts, registered = rows["posts / registered by invite"]
    [never] = rows["never registered (vacant)"]
    claimed, approved = rows["claimed in group chats / approved"]
    assert approved <= claimed and registered + never + claimed <= posts
    # The notice: delivered to at most its recipients, acknowledged by at most those.
    recipients, delivered, acknowledged = rows["notice recipients / delivered / 收到"]
    assert 0 < delivered <= recipients
    assert 0 < acknowledged <= delivered
    fired, told = rows["ladder steps fired / nodes told"]
    assert fired > 0 and told > 0
    raised, handled = rows["alerts raised / handled"]
    assert handled <= raised
    opened, taken, resolved = rows["needs opened / taken / resolved"]
    assert resolved <= taken <= opened
    sent, peak = rows["messages sent / peak per second"]
    assert sent > 0 and 0 < peak <= sent
    assert rows["outbox still pending at the end"] == [0]

    check_export(Path(table["export"]), tmp_path, households)


def check_export(export: Path, folder: Path, households: int) -> None:
    """The county's export of the round: its three sheets, a row per household."""
    assert export.parent == folder and export.exists()
    workbook = load_workbook(export, read_only=True)
    try:
        assert workbook.sheetnames == ["住户报告", "需求", "岗位到岗"]
        # A header row, then one row per household.
        assert len(list(workbook["住户报告"].iter_rows(values_only=True))) == households + 1
    finally:
        workbook.close()
