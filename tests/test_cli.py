"""The command line as an operator uses it: a real process, real exit codes."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "123456:AAHsecretsecretsecretsecretsecret00"


def wuji(*arguments: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120):
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"BOT_TOKEN", "DATABASE_URL", "TELEGRAM_API_SERVER"}
    }
    environment["PYTHONPATH"] = str(ROOT)
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bot", *arguments],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_bad_config_value_is_one_line_naming_the_key_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[webhook]\nport = 'eighty'\n", encoding="utf-8")
    result = wuji("status", cwd=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "webhook.port" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_without_a_token_says_where_to_put_it(tmp_path: Path) -> None:
    result = wuji("run", cwd=tmp_path, env={"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/w.db"})
    assert result.returncode == 2
    assert "BOT_TOKEN" in result.stderr and "config.toml" in result.stderr
    assert "Traceback" not in result.stderr


def test_webhook_mode_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        '[telegram]\nmode = "webhook"\n[webhook]\nurl = "https://wuji.example.org/telegram"\n',
        encoding="utf-8",
    )
    result = wuji("run", cwd=tmp_path, env={"BOT_TOKEN": TOKEN})
    assert result.returncode == 2
    assert "secret_token" in result.stderr
    assert TOKEN not in result.stderr + result.stdout


@pytest.mark.parametrize("use_flag", [True, False])
def test_status_counts_an_imported_roster(tmp_path: Path, use_flag: bool) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path}/wuji.db"
    env = {"DATABASE_URL": database}
    imported = wuji("import", str(ROOT / "examples" / "households.csv"), cwd=tmp_path, env=env)
    assert imported.returncode == 0, imported.stderr
    arguments = ["status", "--json"] if use_flag else ["status"]
    result = wuji(*arguments, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    if use_flag:
        counts = json.loads(result.stdout)
        assert list(counts) == [
            "communities",
            "zones",
            "grids",
            "buildings",
            "units",
            "households",
            "posts",
            "posts_filled",
            "members",
            "round_date",
            "households_reported",
            "alerts_open",
            "needs_open",
        ]
        # No round was ever opened.
        assert counts["round_date"] is None and counts["households_reported"] == 0
        assert counts["households"] > 0
        assert counts["posts"] == 2 * (
            counts["zones"] + counts["grids"] + counts["buildings"] + counts["units"]
        )
        assert counts["posts_filled"] == 0
    else:
        assert "households" in result.stdout


def test_a_bad_roster_lists_every_problem_and_writes_nothing(tmp_path: Path) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path}/wuji.db"
    roster = tmp_path / "households.csv"
    roster.write_text(
        "community,zone,grid,building,unit,room\n"
        "东关社区,片区01,幸福小区,1号楼,1单元,101\n"
        "东关社区,片区01,幸福小区,1号楼,1单元,101\n"
        "东关社区,片区01,,1号楼,1单元,102\n",
        encoding="utf-8",
    )
    result = wuji("import", str(roster), cwd=tmp_path, env={"DATABASE_URL": database})
    assert result.returncode == 1
    assert "households.csv:3:" in result.stderr
    assert "households.csv:4:" in result.stderr
    status = wuji("status", "--json", cwd=tmp_path, env={"DATABASE_URL": database})
    assert json.loads(status.stdout)["households"] == 0


def test_an_unreachable_database_is_one_line_without_the_password(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://wuji:hunter2secret@127.0.0.1:1/wuji"
    result = wuji("status", cwd=tmp_path, env={"DATABASE_URL": url})
    assert result.returncode == 1
    assert "cannot use the database" in result.stderr
    assert "hunter2secret" not in result.stderr and "Traceback" not in result.stderr


def test_invite_prints_a_link_and_exports_a_sheet_of_vacant_posts(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    database = f"sqlite+aiosqlite:///{tmp_path}/wuji.db"
    (tmp_path / "config.toml").write_text(
        f'[telegram]\nbot_username = "wuji_datong_bot"\n[database]\nurl = "{database}"\n',
        encoding="utf-8",
    )
    imported = wuji("import", str(ROOT / "examples" / "households.csv"), cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    link = wuji("invite", "县卫健局片区", "--role", "lead", cwd=tmp_path)
    assert link.returncode == 0, link.stderr
    assert link.stdout.startswith("https://t.me/wuji_datong_bot?start=")
    sheet = tmp_path / "invites.xlsx"
    exported = wuji("invite", "县卫健局片区", "--all", "--out", str(sheet), cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    rows = list(load_workbook(sheet).active.iter_rows(values_only=True))
    assert rows[0] == ("path", "level", "role", "name", "phone", "link")
    assert len(rows) > 2 and all(str(row[5]).startswith("https://t.me/") for row in rows[1:])
    unknown = wuji("invite", "没有这个片区", "--role", "lead", cwd=tmp_path)
    assert unknown.returncode == 1 and "no node at path" in unknown.stderr
    # The refusal says what is there, for the next try.
    assert "the county's top nodes are 县卫健局片区, 县教育局片区" in unknown.stderr
    deeper = wuji("invite", "县卫健局片区/没有这个小区/1号楼", "--role", "lead", cwd=tmp_path)
    assert deeper.returncode == 1
    assert "no node at path '县卫健局片区/没有这个小区/1号楼': 县卫健局片区 holds " in deeper.stderr


def test_a_sheet_that_cannot_be_written_leaves_the_links_already_sent_alive(
    tmp_path: Path,
) -> None:
    import sqlite3

    database = tmp_path / "wuji.db"
    (tmp_path / "config.toml").write_text(
        f'[telegram]\nbot_username = "wuji_datong_bot"\n[database]\n'
        f'url = "sqlite+aiosqlite:///{database}"\n',
        encoding="utf-8",
    )
    assert wuji("import", str(ROOT / "examples" / "households.csv"), cwd=tmp_path).returncode == 0
    sent = wuji("invite", "县卫健局片区", "--all", "--out", "sent.xlsx", cwd=tmp_path)
    assert sent.returncode == 0, sent.stderr

    def invites() -> tuple[int, int]:
        with sqlite3.connect(database) as connection:
            total, revoked = connection.execute(
                "SELECT count(*), count(revoked_at) FROM invites"
            ).fetchone()
        return total, revoked

    before = invites()
    assert before[0] > 0 and before[1] == 0
    unwritable = tmp_path / "no such folder" / "again.xlsx"
    failed = wuji("invite", "县卫健局片区", "--all", "--out", str(unwritable), cwd=tmp_path)
    assert failed.returncode == 1
    assert failed.stderr == f"wuji: cannot write {unwritable}: No such file or directory\n"
    # Nothing was issued, so nothing sent before was withdrawn.
    assert invites() == before
    for wrong, said in (
        (("--all", "--out", "again.csv"), "--out must end in .xlsx"),
        (("--role", "lead", "--out", "again.xlsx"), "--out goes with --all"),
    ):
        refused = wuji("invite", "县卫健局片区", *wrong, cwd=tmp_path)
        assert refused.returncode == 2 and said in refused.stderr
    assert invites() == before


def test_run_refuses_to_start_when_its_redis_does_not_answer(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        '[redis]\nurl = "redis://:hunter2@127.0.0.1:1/0"\n', encoding="utf-8"
    )
    database = f"sqlite+aiosqlite:///{tmp_path / 'wuji.db'}"
    result = wuji("run", cwd=tmp_path, env={"BOT_TOKEN": TOKEN, "DATABASE_URL": database})
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("wuji: cannot reach Redis at redis://:***@127.0.0.1:1/0 ([redis] url)")
    assert "hunter2" not in result.stderr and "Traceback" not in result.stderr


def test_prune_says_which_held_posts_stop_it_before_asking(tmp_path: Path) -> None:
    import sqlite3

    database = tmp_path / "wuji.db"
    environment = {"DATABASE_URL": f"sqlite+aiosqlite:///{database}"}
    households = ROOT / "examples" / "households.csv"
    assert wuji("import", str(households), cwd=tmp_path, env=environment).returncode == 0
    with sqlite3.connect(database) as connection:
        connection.execute(
            "INSERT INTO members (telegram_id, name, reachable, created_at) "
            "VALUES (42, '张建国', 1, CURRENT_TIMESTAMP)"
        )
        connection.execute(
            "UPDATE posts SET holder_id = (SELECT id FROM members) WHERE role = 'lead' "
            "AND node_id = (SELECT id FROM nodes WHERE path = '县卫健局片区')"
        )
    lines = households.read_text(encoding="utf-8").splitlines(keepends=True)
    smaller = tmp_path / "smaller.csv"
    smaller.write_text("".join(line for line in lines if "县卫健局片区" not in line), "utf-8")
    pruned = wuji("import", "--prune", "--yes", str(smaller), cwd=tmp_path, env=environment)
    assert pruned.returncode == 1
    assert "node 县卫健局片区" in pruned.stdout and "nothing imported" in pruned.stdout
    assert pruned.stderr.splitlines() == [
        "wuji: cannot prune: posts among them are held (free each with /revoke PATH role):",
        "  县卫健局片区 lead (张建国)",
    ]


def test_a_database_that_never_answers_is_said_so() -> None:
    from sqlalchemy.exc import DBAPIError

    from bot.cli import _reason

    assert "no answer in time" in _reason(TimeoutError())
    wrapped = DBAPIError("SELECT 1", {}, ConnectionRefusedError(111, "Connection refused"))
    assert _reason(wrapped) == "[Errno 111] Connection refused"


def test_import_progress_bars_are_drawn_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.cli_commands import ProgressBars

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    bars = ProgressBars()
    bars("reading households.csv", 0, 3)
    bars("reading households.csv", 3, None)
    bars("writing", 0, 2)
    bars("writing", 2, None)
    bars.close()
    drawn = terminal.getvalue()
    assert "reading households.csv" in drawn and "3/3" in drawn
    assert "writing" in drawn and "2/2" in drawn


async def _port_taken(_config: object, _arguments: object) -> int:
    raise OSError(98, "error while attempting to bind on address ('127.0.0.1', 8080)")


@pytest.mark.usefixtures("restored_logging")
def test_a_refusal_outside_the_database_is_not_blamed_on_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'wuji.sqlite3'}")
    monkeypatch.setitem(cli.COMMANDS, "status", (__name__, "_port_taken"))
    assert cli.main(["status"]) == 1
    printed = capsys.readouterr().err
    assert "bind on address ('127.0.0.1', 8080)" in printed
    assert "database" not in printed and "Traceback" not in printed
