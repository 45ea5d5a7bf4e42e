"""The bot as the soak runs it: ``python -m bot run`` processes with a generated config file,
their output captured per start, killed with SIGKILL and started again."""

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from datetime import time as clock_time
from pathlib import Path
from typing import Any

from bot.config import Config

# The repository: the bot processes run the same code as the driver.
ROOT = Path(__file__).resolve().parents[2]

# The lines each role logs once it is up: polling has read getMe, the clock has started
# (after the sender put back what a crash left in flight), the webhook listens.
READY = {
    "all": ("Run polling for bot", "clock started"),
    "web": ("webhook listening on",),
    "worker": ("clock started",),
}


def toml_text(config: Config) -> str:
    """The config as a TOML file ``python -m bot --config`` reads, secrets included."""
    data = config.model_dump(mode="python")
    data["telegram"]["token"] = config.telegram.token.get_secret_value()
    data["webhook"]["secret_token"] = config.webhook.secret_token.get_secret_value()
    top = {key: value for key, value in data.items() if not isinstance(value, dict)}
    lines = [f"{key} = {_value(value)}" for key, value in top.items()]
    for name, section in data.items():
        if isinstance(section, dict):
            lines += _section(name, section)
    return "\n".join(lines) + "\n"


def _section(name: str, section: dict[str, Any]) -> list[str]:
    lines = ["", f"[{name}]"]
    nested: list[str] = []
    for key, value in section.items():
        if isinstance(value, dict):
            nested += _section(f"{name}.{key}", value)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for item in value:
                nested += ["", f"[[{name}.{key}]]"]
                nested += [f"{k} = {_value(v)}" for k, v in item.items()]
        else:
            lines.append(f"{key} = {_value(value)}")
    return lines + nested


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, clock_time):
        return value.strftime("%H:%M:%S")
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class BotProcess:
    """One ``python -m bot run`` of a role, started again after each kill."""

    name: str
    role: str
    config: Path
    logs: Path
    port: int | None = None
    starts: int = 0
    kills: int = 0
    process: asyncio.subprocess.Process | None = None
    log_files: list[Path] = field(default_factory=list)
    started_at: float = 0.0

    async def start(self) -> None:
        self.starts += 1
        log = self.logs / f"{self.name}.{self.starts}.log"
        self.log_files.append(log)
        # The same code as the driver's, wherever it was started from.
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        env = dict(os.environ, WUJI_ROLE=self.role, PYTHONUNBUFFERED="1", PYTHONPATH=path)
        for override in ("BOT_TOKEN", "DATABASE_URL", "TELEGRAM_API_SERVER"):
            env.pop(override, None)
        with log.open("wb") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "--config",
                str(self.config),
                "run",
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
            )
        self.started_at = time.monotonic()

    def log_text(self) -> str:
        return "\n".join(
            path.read_text(encoding="utf-8", errors="replace")
            for path in self.log_files
            if path.exists()
        )

    async def ready(self, timeout: float = 600.0) -> float:  # noqa: ASYNC109 (start-up bound)
        """Waits until this start logged that it is up; returns the seconds it took."""
        deadline = time.monotonic() + timeout
        markers = READY[self.role]
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.returncode is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}: see {self.log_files[-1]}"
                )
            text = self.log_files[-1].read_text(encoding="utf-8", errors="replace")
            if all(marker in text for marker in markers):
                return time.monotonic() - self.started_at
            await asyncio.sleep(0.2)
        raise RuntimeError(f"{self.name} not up within {timeout:.0f} s: see {self.log_files[-1]}")

    async def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, whatever was in flight stays as it was."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        self.kills += 1

    async def stop(self) -> None:
        """SIGTERM, as an operator stops it; SIGKILL after 30 s."""
        if self.process is None or self.process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), 30)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGKILL)
            await self.process.wait()


@dataclass
class Fleet:
    """The processes of one deployment: one ``all`` (SQLite), or web replicas and a worker."""

    processes: list[BotProcess]

    @classmethod
    def of(cls, workdir: Path, replicas: int) -> "Fleet":
        logs = workdir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        if replicas <= 0:
            return cls([BotProcess("bot", "all", workdir / "bot.toml", logs)])
        processes = [
            BotProcess(f"web{n}", "web", workdir / f"web{n}.toml", logs, port=free_port())
            for n in range(1, replicas + 1)
        ]
        processes.append(BotProcess("worker", "worker", workdir / "worker.toml", logs))
        return cls(processes)

    @property
    def backends(self) -> list[str]:
        return [f"http://127.0.0.1:{p.port}/telegram" for p in self.processes if p.port]

    def write_configs(self, config: Config) -> None:
        for process in self.processes:
            mine = config.model_copy(deep=True)
            mine.role = process.role  # type: ignore[assignment]
            if process.port is not None:
                mine.webhook.port = process.port
                mine.webhook.host = "127.0.0.1"
            process.config.write_text(toml_text(mine), encoding="utf-8")

    async def start(self) -> None:
        for process in self.processes:
            await process.start()
        await asyncio.gather(*(process.ready() for process in self.processes))

    async def stop(self) -> None:
        await asyncio.gather(*(process.stop() for process in self.processes))

    def named(self, name: str) -> BotProcess:
        return next(process for process in self.processes if process.name == name)

    def logs(self) -> dict[str, str]:
        return {process.name: process.log_text() for process in self.processes}
