"""The README's first session, as a newcomer runs it from a fresh clone: real processes,
real exit codes, and never a traceback. Every failure is one line naming its cause and
its fix."""

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TOKEN = "123456:AAHsecretsecretsecretsecretsecret00"
# Nothing listens here: a connection is refused at once.
NO_SERVER = "http://127.0.0.1:9"


def environment_with(env: dict[str, str]) -> dict[str, str]:
    """This process's environment without Wuji's settings, then ``env``."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"BOT_TOKEN", "DATABASE_URL", "TELEGRAM_API_SERVER"}
    }
    environment["PYTHONPATH"] = str(ROOT)
    environment.update(env)
    return environment


def wuji(*arguments: str, cwd: Path, env: dict[str, str], timeout: float = 300):
    result = subprocess.run(
        [sys.executable, "-m", "bot", *arguments],
        cwd=cwd,
        env=environment_with(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert "Traceback" not in result.stderr, result.stderr
    # Routine library lines (a line per migration step) are for level DEBUG only.
    assert "alembic" not in result.stderr, result.stderr
    return result


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("wuji: ")
    return lines[0]


def test_the_first_session_of_the_readme(tmp_path: Path, db_url: str, engine: AsyncEngine) -> None:
    env = {"DATABASE_URL": db_url}
    imported = wuji(
        "import",
        str(EXAMPLES / "households.csv"),
        str(EXAMPLES / "people.csv"),
        cwd=tmp_path,
        env=env,
    )
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.startswith("imported: 2 zones")

    status = wuji("status", "--json", cwd=tmp_path, env=env)
    assert status.returncode == 0, status.stderr
    before = json.loads(status.stdout)
    assert before["zones"] == 2 and before["households"] == 40

    # Without the bot's username (and no token to ask Telegram for it): the key is named.
    nameless = wuji("invite", "县卫健局片区", "--role", "lead", cwd=tmp_path, env=env)
    assert nameless.returncode == 2
    assert "[telegram] bot_username" in one_line(nameless.stderr)

    config = tmp_path / "config.toml"
    config.write_text('[telegram]\nbot_username = "wuji_datong_bot"\n', encoding="utf-8")
    link = wuji("invite", "县卫健局片区", "--role", "lead", cwd=tmp_path, env=env)
    assert link.returncode == 0, link.stderr
    assert link.stdout.startswith("https://t.me/wuji_datong_bot?start=")
    sheet = tmp_path / "invites.xlsx"
    exported = wuji("invite", "县卫健局片区", "--all", "--out", str(sheet), cwd=tmp_path, env=env)
    assert exported.returncode == 0, exported.stderr
    assert sheet.stat().st_size > 0

    # The seed county does not go into the example county's database, and says where to.
    refused = wuji("seed-demo", cwd=tmp_path, env=env)
    assert refused.returncode == 1
    line = one_line(refused.stderr)
    assert "县卫健局片区/" in line and "DATABASE_URL=sqlite+aiosqlite:///seed.db" in line
    after = wuji("status", "--json", cwd=tmp_path, env=env)
    assert json.loads(after.stdout) == before  # nothing half-written

    seed = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'seed.db'}"}
    seeded = wuji("seed-demo", "--households-per-unit", "1", cwd=tmp_path, env=seed)
    assert seeded.returncode == 0, seeded.stderr
    assert seeded.stdout.startswith("seeded: 47 zones, 188 grids, 967 buildings, 2899 units")
    again = wuji("seed-demo", "--households-per-unit", "1", cwd=tmp_path, env=seed)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("seeded: 0 zones")
    assert again.stdout.strip().endswith("(all there already)")

    # A larger seed county is told apart from another county, with the --scale that fits it.
    larger = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'larger.db'}"}
    twice = wuji(
        "seed-demo", "--households-per-unit", "1", "--scale", "2", cwd=tmp_path, env=larger
    )
    assert twice.returncode == 0, twice.stderr
    smaller = wuji("seed-demo", "--households-per-unit", "1", cwd=tmp_path, env=larger)
    assert smaller.returncode == 1
    line = one_line(smaller.stderr)
    assert "holds the seed county at --scale 2" in line and "seed-demo --scale 2" in line


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("nonsense", "not a database URL: use e.g. sqlite+aiosqlite:///wuji.db"),
        ("mysql://wuji:hunter2secret@db/wuji", "mysql is not supported"),
        ("sqlite:///x.db", "write sqlite+aiosqlite:///x.db"),
        (
            "postgresql://wuji:hunter2secret@db/wuji",
            "write postgresql+asyncpg://wuji:***@db/wuji",
        ),
    ],
)
def test_a_bad_database_url_is_one_line_with_the_fix(tmp_path: Path, url: str, says: str) -> None:
    result = wuji("status", cwd=tmp_path, env={"DATABASE_URL": url})
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert "DATABASE_URL" in line and says in line
    assert "hunter2secret" not in line


def test_invite_that_cannot_reach_telegram_asks_for_the_username(tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'wuji.db'}",
        "BOT_TOKEN": TOKEN,
        "TELEGRAM_API_SERVER": NO_SERVER,
    }
    result = wuji("invite", "县卫健局片区", "--role", "lead", cwd=tmp_path, env=env)
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert "cannot reach Telegram at http://127.0.0.1:9" in line
    assert "[telegram] bot_username" in line and TOKEN not in line


def test_run_that_cannot_reach_telegram_says_so_in_one_line(tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'wuji.db'}",
        "BOT_TOKEN": TOKEN,
        "TELEGRAM_API_SERVER": NO_SERVER,
    }
    result = wuji("run", cwd=tmp_path, env=env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert "Wuji starting: role all, polling" in lines[0]
    failures = [line for line in lines if line.startswith("wuji: ")]
    assert len(failures) == 1 and len(lines) == 2, result.stderr
    assert "cannot reach Telegram at http://127.0.0.1:9 to start" in failures[0]
    assert "check the network" in failures[0] and TOKEN not in result.stderr


LOADED = """
import sys
from bot.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
print("aiogram loaded:", any(name.split(".")[0] == "aiogram" for name in sys.modules))
raise SystemExit(code)
"""


@pytest.mark.parametrize(
    "arguments",
    [
        ["--help"],
        ["migrate"],
        ["status"],
        ["import", str(EXAMPLES / "households.csv")],
        ["seed-demo", "--csv", "seed.csv", "--scale", "1", "--households-per-unit", "1"],
        ["export", "--round", "2026-01-01", "--out", "round.xlsx"],
        ["invite", "县卫健局片区", "--role", "lead"],
    ],
    ids=lambda arguments: arguments[0],
)
def test_commands_that_do_not_talk_to_telegram_do_not_import_aiogram(
    tmp_path: Path, arguments: list[str]
) -> None:
    (tmp_path / "config.toml").write_text(
        f'[telegram]\nbot_username = "wuji_datong_bot"\n'
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "wuji.db"}"\n',
        encoding="utf-8",
    )
    if arguments[0] == "invite":
        wuji("import", str(EXAMPLES / "households.csv"), cwd=tmp_path, env={})
    environment = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    environment["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [sys.executable, "-c", LOADED, *arguments],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode in (0, 1), result.stderr  # export: no round on that day
    assert result.stdout.strip().splitlines()[-1] == "aiogram loaded: False"


def test_a_database_of_a_newer_version_is_one_line(tmp_path: Path) -> None:
    database = tmp_path / "wuji.db"
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{database}"}
    assert wuji("migrate", cwd=tmp_path, env=env).returncode == 0
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999'")
    result = wuji("status", cwd=tmp_path, env=env)
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert "'9999'" in line and "written by a newer Wuji" in line


async def test_run_with_a_token_telegram_refuses_is_exit_2_naming_the_token_setting(
    tmp_path: Path,
) -> None:
    from tests.emulator import TelegramEmulator

    async with TelegramEmulator(token="654321:the-bots-real-token") as emulator:
        environment = environment_with(
            {
                "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'wuji.db'}",
                "BOT_TOKEN": TOKEN,
                "TELEGRAM_API_SERVER": emulator.base_url,
            }
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            cwd=tmp_path,
            env=environment,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    stderr = err.decode()
    assert process.returncode == 2, stderr
    assert "Traceback" not in stderr
    failures = [line for line in stderr.splitlines() if line.startswith("wuji: ")]
    assert len(failures) == 1, stderr
    assert "refuses the bot token" in failures[0] and "BOT_TOKEN" in failures[0]
    assert TOKEN not in stderr and "AAHsecret" not in stderr
