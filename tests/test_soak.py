"""The soak at a small scale (``python -m benchmarks.soak``): the county's day with the bot
in its own processes, killed with SIGKILL three times; every promised zero must be zero.
On SQLite in the SQLite run; on PostgreSQL with Redis, two webhook replicas and a worker in
the PostgreSQL run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from models.db import is_sqlite

ROOT = Path(__file__).resolve().parent.parent
DATABASE = os.environ.get("TEST_DATABASE_URL", "")
ON_POSTGRES = bool(DATABASE) and not is_sqlite(DATABASE)
# A Redis database of the soak's own (the restart test flushes 15).
REDIS = os.environ.get("TEST_SOAK_REDIS_URL", "redis://127.0.0.1:6379/14")
ZEROS = (
    "reports_lost",
    "notices_lost",
    "ladder_duplicates",
    "ladder_missed",
    "group_leaks",
)


def soak(tmp_path: Path, *arguments: str) -> dict[str, int]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"BOT_TOKEN", "DATABASE_URL", "TELEGRAM_API_SERVER", "WUJI_ROLE"}
    }
    environment["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.soak",
            "--units",
            "5",
            "--seed",
            "3",
            "--workdir",
            str(tmp_path),
            *arguments,
        ],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr[-3000:]
    figures = json.loads(lines[-1])
    report = done.stdout[-3000:] + done.stderr[-2000:]
    for name in ZEROS:
        assert figures[name] == 0, f"{name} = {figures[name]}\n{report}"
    assert figures["kills"] == 3, report
    assert figures["confirmed_reports"] > 0, report
    # Beyond the line: repeats within the in-flight bound, no token in any log.
    assert done.returncode == 0, report
    for log in (tmp_path / "logs").glob("*.log"):
        assert "DEMO-wuji-no-network" not in log.read_text(encoding="utf-8", errors="replace")
    return figures


@pytest.mark.skipif(ON_POSTGRES, reason="the SQLite form runs in the SQLite run")
def test_the_soak_keeps_its_promises_across_three_kills_on_sqlite(tmp_path: Path) -> None:
    soak(tmp_path)


@pytest.mark.skipif(not ON_POSTGRES, reason="needs TEST_DATABASE_URL=postgresql+asyncpg://…")
def test_the_soak_keeps_its_promises_with_replicas_on_postgresql(tmp_path: Path) -> None:
    from redis import Redis

    with Redis.from_url(REDIS) as redis:
        redis.flushdb()  # no conversation left over from an earlier run
    soak(tmp_path, "--database", DATABASE, "--redis", REDIS, "--replicas", "2")


def test_the_soak_s_checks_see_a_leak_and_a_confirmation() -> None:
    """The checks themselves: a household answer or a phone in a group counts as a leak, a
    count does not; a sheet that said "saved" confirms the households it marks done."""
    from benchmarks.soak.checks import Figures, check_groups, confirmed_reports
    from bot.config import Config
    from bot.emulator import RecordedRequest, TelegramEmulator

    emulator = TelegramEmulator()
    sheet = {
        "inline_keyboard": [
            [
                {"text": "✅ 101", "callback_data": "rh:7:11"},
                {"text": "▫️ 102", "callback_data": "rh:7:12"},
                {"text": "🚪 201", "callback_data": "rh:7:13"},
            ]
        ]
    }
    said = [
        ("sendMessage", {"chat_id": -5, "text": "阳光小区：已完成 10/12 户"}, 200),
        ("sendMessage", {"chat_id": -5, "text": "101 发热或有症状人数 1"}, 200),
        ("editMessageText", {"chat_id": -6, "text": "联系 +8613912345678"}, 200),
        ("sendMessage", {"chat_id": 42, "text": "101 阴性"}, 200),
        ("editMessageText", {"chat_id": 42, "text": "✅ 已保存：101", "reply_markup": sheet}, 200),
        ("editMessageText", {"chat_id": 43, "text": "✅ 已保存：301", "reply_markup": sheet}, 400),
    ]
    for method, params, status in said:
        emulator.requests.append(RecordedRequest(0.0, method, params, status=status))
    figures = Figures()
    check_groups(emulator, Config(), figures)
    assert figures.group_leaks == 2, figures.problems
    assert confirmed_reports(emulator) == {(7, 11), (7, 13)}
