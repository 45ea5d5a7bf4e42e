"""What the demo shows: a live progress line while it runs, the day's table at the end, and
the round's reports as an XLSX file."""

import asyncio
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.emulator import RecordedRequest
from bot.i18n import create_i18n
from models.alerts import Alert
from models.base import as_utc
from models.exports import export_round, export_sheets
from models.needs import Need
from models.notices import NoticeRecipient
from models.outbox.table import OutboxMessage, OutboxStatus
from models.rounds import HouseholdReport, ReportRound
from models.spreadsheets import workbook_bytes

SENDS = {"sendMessage", "sendPhoto", "sendDocument", "copyMessage"}


class Progress:
    """One updating line on a terminal; otherwise a line per phase, and every 15 s of a phase
    that counts."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.name = ""
        self.done = 0
        self.total = 0
        self.started = time.monotonic()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._draw())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self.tty:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()

    def phase(self, name: str, total: int = 0) -> None:
        self.name, self.done, self.total = name, 0, total
        if not self.tty:
            elapsed = time.monotonic() - self.started
            count = f" ({total})" if total else ""
            print(f"[{elapsed:6.1f}s] {name}{count}", file=sys.stderr, flush=True)

    def say(self, text: str) -> None:
        """A line of its own, kept above the updating one."""
        if self.tty:
            sys.stderr.write("\r\x1b[2K")
        print(f"  {text}", file=sys.stderr, flush=True)

    def advance(self, by: int = 1) -> None:
        self.done += by

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        count = f" {self.done}/{self.total}" if self.total else ""
        return f"[{elapsed:6.1f}s] {self.name}{count}"

    async def _draw(self) -> None:
        if not self.tty:
            # A log file gets a line every 15 s of a long phase, not a redrawn one.
            while True:
                await asyncio.sleep(15)
                if self.total:
                    print(self.line(), file=sys.stderr, flush=True)
        while True:
            sys.stderr.write("\r\x1b[2K" + self.line()[:119])
            sys.stderr.flush()
            await asyncio.sleep(0.2)


@dataclass
class Tally:
    households: int = 0
    posts: int = 0
    registered: int = 0
    never_registered: int = 0
    vacant_for_claims: int = 0
    claims: int = 0
    claims_approved: int = 0
    on_time: int = 0
    late: int = 0
    missing: int = 0
    nobody_home: int = 0
    chase_runs_fired: int = 0
    chase_nodes_told: int = 0
    notice_recipients: int = 0
    notice_delivered: int = 0
    notice_acked: int = 0
    alerts: int = 0
    alerts_handled: int = 0
    alert_taps: int = 0
    needs: int = 0
    needs_taken: int = 0
    needs_resolved: int = 0
    need_taps: int = 0
    export: Path | None = None
    outbox_left: int = 0
    requests: list[RecordedRequest] = field(default_factory=list)
    failures: list[BaseException] = field(default_factory=list)

    def rates(self) -> tuple[int, int]:
        """Messages the bot sent, and the most in any one second."""
        sends = [r for r in self.requests if r.method in SENDS and r.status == 200]
        per_second = Counter(int(r.time) for r in sends)
        return len(sends), max(per_second.values(), default=0)

    def print_table(self) -> None:
        sent, peak = self.rates()
        rows = [
            ("households", f"{self.households:,}"),
            ("posts / registered by invite", f"{self.posts:,} / {self.registered:,}"),
            ("never registered (vacant)", f"{self.never_registered:,}"),
            ("claimed in group chats / approved", f"{self.claims} / {self.claims_approved}"),
            ("reports on time", f"{self.on_time:,}"),
            ("reports late", f"{self.late:,}"),
            ("reports missing", f"{self.missing:,}"),
            ("  of which nobody home (reported)", f"{self.nobody_home:,}"),
            (
                "ladder steps fired / nodes told",
                f"{self.chase_runs_fired} / {self.chase_nodes_told}",
            ),
            (
                "notice recipients / delivered / 收到",
                f"{self.notice_recipients:,} / {self.notice_delivered:,} / {self.notice_acked:,}",
            ),
            ("alerts raised / handled", f"{self.alerts} / {self.alerts_handled}"),
            (
                "needs opened / taken / resolved",
                f"{self.needs} / {self.needs_taken} / {self.needs_resolved}",
            ),
            ("messages sent / peak per second", f"{sent:,} / {peak}"),
            ("outbox still pending at the end", f"{self.outbox_left:,}"),
            ("export", str(self.export or "-")),
        ]
        width = max(len(name) for name, _ in rows)
        print()
        print("A day of the county")
        print("-" * (width + 20))
        for name, value in rows:
            print(f"{name:<{width}}  {value:>16}")
        if self.failures:
            print(f"\n{len(self.failures)} step(s) did not go as a person expected:")
            for failure in self.failures[:10]:
                print(f"  {type(failure).__name__}: {failure}")


async def count_day(session: AsyncSession, report_round: ReportRound, tally: Tally) -> None:
    due = as_utc(report_round.due_at)
    reports = await session.execute(
        select(HouseholdReport.status, HouseholdReport.reported_at).where(
            HouseholdReport.round_id == report_round.id
        )
    )
    for status, reported_at in reports:
        if status == "missing" or reported_at is None:
            tally.missing += 1
            continue
        if status == "nobody_home":
            tally.nobody_home += 1
        if as_utc(reported_at) <= due:
            tally.on_time += 1
        else:
            tally.late += 1
    from models.chase import ChaseStep

    tally.chase_nodes_told = int(
        await session.scalar(
            select(func.count()).select_from(ChaseStep).where(ChaseStep.round_id == report_round.id)
        )
        or 0
    )
    tally.notice_recipients = int(
        await session.scalar(select(func.count()).select_from(NoticeRecipient)) or 0
    )
    tally.notice_delivered = int(
        await session.scalar(
            select(func.count(func.distinct(OutboxMessage.member_id))).where(
                OutboxMessage.kind == "notice", OutboxMessage.status == OutboxStatus.sent
            )
        )
        or 0
    )
    tally.notice_acked = int(
        await session.scalar(
            select(func.count())
            .select_from(NoticeRecipient)
            .where(NoticeRecipient.acked_at.is_not(None))
        )
        or 0
    )
    tally.alerts = int(await session.scalar(select(func.count()).select_from(Alert)) or 0)
    tally.alerts_handled = int(
        await session.scalar(
            select(func.count()).select_from(Alert).where(Alert.acknowledged_at.is_not(None))
        )
        or 0
    )
    tally.needs = int(await session.scalar(select(func.count()).select_from(Need)) or 0)
    tally.needs_taken = int(
        await session.scalar(
            select(func.count()).select_from(Need).where(Need.taken_at.is_not(None))
        )
        or 0
    )
    tally.needs_resolved = int(
        await session.scalar(
            select(func.count()).select_from(Need).where(Need.resolved_at.is_not(None))
        )
        or 0
    )


async def write_export(
    session: AsyncSession, report_round: ReportRound, out: Path, config: Config | None = None
) -> Path:
    """The round's export as the command centre gets it (``python -m bot export``): its
    household reports, need tickets and post coverage, one sheet each."""
    config = config or Config()
    locale = config.i18n.default_locale
    i18n = create_i18n(locale)
    export = await export_round(session, report_round, None, locale, None, via="demo")

    def word(key: str) -> str:
        return str(i18n.gettext(key, locale=locale))

    sheets = export_sheets(export, word, config.reports.timezone or config.i18n.timezone)
    path = out / f"wuji-demo-{report_round.date.isoformat()}.xlsx"
    await asyncio.to_thread(_write, path, workbook_bytes(sheets))
    return path


def _write(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
