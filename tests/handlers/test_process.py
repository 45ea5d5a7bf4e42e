"""`python -m bot run` as an operator starts it: migrations, polling, a clean stop."""

import asyncio
import os
import signal
import sys
from pathlib import Path

from tests.emulator import TelegramEmulator
from tests.handlers.fixtures import BOT_TOKEN

ROOT = Path(__file__).resolve().parent.parent.parent
OUTPUT = "bot.log"


async def start_bot(cwd: Path, environment: dict[str, str]) -> asyncio.subprocess.Process:
    """``python -m bot run`` in ``cwd``, its output going to a file there: a pipe nobody
    reads until the end fills up (64 KiB) and blocks the bot's next log line."""
    with (cwd / OUTPUT).open("wb") as output:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            cwd=cwd,
            env=environment,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
        )


async def stop_bot(process: asyncio.subprocess.Process, cwd: Path) -> str:
    """SIGTERM, as an operator's service manager stops it; returns everything it wrote."""
    process.send_signal(signal.SIGTERM)
    await asyncio.wait_for(process.wait(), timeout=30)
    return (cwd / OUTPUT).read_text(encoding="utf-8", errors="replace")


async def test_run_answers_then_stops_cleanly_on_sigterm_without_logging_the_token(
    emulator: TelegramEmulator, tmp_path: Path
) -> None:
    environment = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "BOT_TOKEN": BOT_TOKEN,
        "TELEGRAM_API_SERVER": emulator.base_url,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'wuji.db'}",
    }
    (tmp_path / "config.toml").write_text('[logging]\nlevel = "DEBUG"\n', encoding="utf-8")
    process = await start_bot(tmp_path, environment)
    try:
        li = emulator.user(user_id=6001, first_name="李", language_code="zh")
        await li.send("/help")
        reply = await li.next_message(timeout=60)  # the child imports aiogram first
        assert "/lang" in reply.text
    finally:
        log = await stop_bot(process, tmp_path)
    assert process.returncode == 0, log[-2000:]
    assert "Polling stopped" in log
    assert BOT_TOKEN not in log
    assert BOT_TOKEN.split(":")[1] not in log


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_webhook_mode_end_to_end_then_a_clean_stop(
    emulator: TelegramEmulator, tmp_path: Path
) -> None:
    port = free_port()
    (tmp_path / "config.toml").write_text(
        '[telegram]\nmode = "webhook"\n'
        f'[webhook]\nurl = "http://127.0.0.1:{port}/telegram"\nhost = "127.0.0.1"\n'
        f'port = {port}\nsecret_token = "e2e-webhook-secret"\n',
        encoding="utf-8",
    )
    environment = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "BOT_TOKEN": BOT_TOKEN,
        "TELEGRAM_API_SERVER": emulator.base_url,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'wuji.db'}",
    }
    process = await start_bot(tmp_path, environment)
    try:
        await emulator.wait_until(
            lambda: any(r.method == "setWebhook" for r in emulator.requests), timeout=60
        )
        zhou = emulator.user(user_id=6002, first_name="周", language_code="en")
        await zhou.send("/help")
        assert "/lang" in (await zhou.next_message(timeout=20)).text
        # Handled before answering: the reply is out before the delivery is acknowledged.
        delivery = await emulator.wait_until(lambda: emulator.webhook_deliveries, timeout=10)
        assert delivery[-1].status == 200
    finally:
        log = await stop_bot(process, tmp_path)
    assert process.returncode == 0, log[-2000:]
    assert "e2e-webhook-secret" not in log and BOT_TOKEN not in log
