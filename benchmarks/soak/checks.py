"""What the soak checks at the end of the day, from what the emulator recorded (what people
saw) and what the database holds."""

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.chase import ladder_of
from bot.config import Config
from bot.emulator import TelegramEmulator
from bot.forms import load_report_form
from models.chase import ChaseRun, RunOutcome
from models.notices import Notice, NoticeRecipient, source_of
from models.org import Member
from models.outbox.table import OutboxMessage, OutboxStatus
from models.rounds import HouseholdReport, ReportRound, ReportStatus

# The sheet's marks of a household the bot holds as reported (``handlers/report_views``).
SAVED_MARKS = ("✅", "🚪", "⚠️")
PHONE = re.compile(r"\+?86\s?1\d{10}")
# Labels too common to mark a household's answer ("其他" is in "请选择其他空缺岗位").
EVERYDAY = {"其他", "需求", "备注", "None", "Note", "Needs", "Other"}


@dataclass
class Figures:
    confirmed_reports: int = 0
    reports_lost: int = 0
    notices_lost: int = 0
    notice_repeats: int = 0
    ladder_duplicates: int = 0
    ladder_missed: int = 0
    group_leaks: int = 0
    kills: int = 0
    # Beside the promised line: the bound on repeats, other repeats, the token in the logs.
    repeat_bound: int = 0
    ladder_repeats: int = 0
    token_in_logs: int = 0
    notices: int = 0
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        return json.dumps(
            {
                "confirmed_reports": self.confirmed_reports,
                "reports_lost": self.reports_lost,
                "notices_lost": self.notices_lost,
                "notice_repeats": self.notice_repeats,
                "ladder_duplicates": self.ladder_duplicates,
                "ladder_missed": self.ladder_missed,
                "group_leaks": self.group_leaks,
                "kills": self.kills,
            }
        )

    def kept(self, kills_wanted: int) -> bool:
        """Every promised zero is zero, the repeats stay within the bound, all kills landed."""
        zeros = (
            self.reports_lost,
            self.notices_lost,
            self.ladder_duplicates,
            self.ladder_missed,
            self.group_leaks,
            self.token_in_logs,
        )
        within = self.notice_repeats + self.ladder_repeats <= self.repeat_bound
        # A day with no confirmed report or no notice would pass the checks vacuously.
        happened = self.confirmed_reports > 0 and self.notices > 0
        return not any(zeros) and within and happened and self.kills == kills_wanted


def markup_of(params: dict[str, Any]) -> dict[str, Any]:
    markup = params.get("reply_markup") or {}
    if isinstance(markup, str):
        markup = json.loads(markup)
    return markup if isinstance(markup, dict) else {}


def confirmed_reports(emulator: TelegramEmulator) -> set[tuple[int, int]]:
    """(round, household) of every household a unit sheet showed as saved in a message that
    said "saved": what the bot confirmed to a person."""
    confirmed: set[tuple[int, int]] = set()
    for request in emulator.requests:
        if request.status != 200 or "已保存" not in str(request.params.get("text") or ""):
            continue
        for row in markup_of(request.params).get("inline_keyboard") or []:
            for button in row:
                data = str(button.get("callback_data") or "")
                if data.startswith("rh:") and str(button.get("text", "")).startswith(SAVED_MARKS):
                    _, round_id, household_id = data.split(":")
                    confirmed.add((int(round_id), int(household_id)))
    return confirmed


async def check_reports(
    session: AsyncSession, emulator: TelegramEmulator, figures: Figures
) -> None:
    confirmed = confirmed_reports(emulator)
    figures.confirmed_reports = len(confirmed)
    rounds = {round_id for round_id, _ in confirmed}
    held = {
        (round_id, household_id)
        for round_id, household_id, status in await session.execute(
            select(
                HouseholdReport.round_id, HouseholdReport.household_id, HouseholdReport.status
            ).where(HouseholdReport.round_id.in_(rounds))
        )
        if status in (ReportStatus.reported, ReportStatus.nobody_home)
    }
    lost = sorted(confirmed - held)
    figures.reports_lost = len(lost)
    if lost:
        figures.problems.append(f"confirmed but not in the database: {lost[:10]}")


def shown(message: Any) -> str:
    return str(message.text or message.caption or "")


async def check_notices(
    session: AsyncSession, emulator: TelegramEmulator, figures: Figures
) -> None:
    """Each recipient of each notice (members, and bound groups) has it in their chat."""
    notices = list(await session.execute(select(Notice.id, Notice.text)))
    figures.notices = len(notices)
    if not notices:
        figures.problems.append("no notice was sent: the notice checks had nothing to check")
    for notice_id, words in notices:
        members = await session.scalars(
            select(Member.telegram_id)
            .join(NoticeRecipient, NoticeRecipient.member_id == Member.id)
            .where(NoticeRecipient.notice_id == notice_id)
        )
        groups = await session.scalars(
            select(OutboxMessage.chat_id).where(
                OutboxMessage.source == source_of(notice_id), OutboxMessage.chat_id < 0
            )
        )
        for chat_id in {*members, *groups}:
            got = sum(
                1
                for message in emulator.bot_messages(chat_id, include_deleted=True)
                if words and words in shown(message)
            )
            if got == 0:
                figures.notices_lost += 1
                figures.problems.append(f"notice {notice_id} never reached chat {chat_id}")
            figures.notice_repeats += max(0, got - 1)


async def check_ladder(
    session: AsyncSession, emulator: TelegramEmulator, config: Config, figures: Figures
) -> None:
    """Every step of today's round fired once; each message it queued reached its reader
    once (a repeat of one queued message after a kill is counted against the bound)."""
    report_round = await session.scalar(
        select(ReportRound).order_by(ReportRound.date.desc()).limit(1)
    )
    assert report_round is not None
    recorded = list(
        await session.execute(
            select(ChaseRun.step, ChaseRun.outcome, ChaseRun.queued_at).where(
                ChaseRun.round_id == report_round.id
            )
        )
    )
    runs = Counter((step, outcome) for step, outcome, _ in recorded)
    for step, outcome, queued_at in recorded:
        if outcome == RunOutcome.fired.value and queued_at is None:
            figures.ladder_missed += 1  # fired, but not all of its messages were queued
            figures.problems.append(f"ladder step {step}: messages not all queued")
    for step in ladder_of(config).steps:
        fired = runs[(step.name, RunOutcome.fired.value)]
        if fired == 0:
            figures.ladder_missed += 1
            figures.problems.append(f"ladder step {step.name} did not fire: {runs}")
        figures.ladder_duplicates += max(0, fired - 1)
    rows = list(
        await session.execute(
            select(
                OutboxMessage.chat_id,
                OutboxMessage.source,
                OutboxMessage.status,
                OutboxMessage.telegram_message_id,
            ).where(OutboxMessage.source.like(f"chase:{report_round.id}:%"))
        )
    )
    per_reader = Counter((chat_id, source) for chat_id, source, _, _ in rows)
    figures.ladder_duplicates += sum(count - 1 for count in per_reader.values() if count > 1)
    accounted: dict[int, set[int]] = defaultdict(set)
    for chat_id, _, _, message_id in rows:
        if message_id is not None:
            accounted[chat_id].add(message_id)
    for chat_id, source, status, message_id in rows:
        messages = {m.message_id: m for m in emulator.bot_messages(chat_id, include_deleted=True)}
        delivered = messages.get(message_id) if message_id is not None else None
        if status != OutboxStatus.sent or delivered is None:
            figures.ladder_missed += 1
            figures.problems.append(f"{source} to chat {chat_id}: {status}, not delivered")
            continue
        figures.ladder_repeats += sum(
            1
            for other in messages.values()
            if other.message_id not in accounted[chat_id] and shown(other) == shown(delivered)
        )


def household_words(config: Config) -> list[str]:
    """Words only a household's answers hold: the form's field and choice labels."""
    form = load_report_form(config)
    words: set[str] = set()
    for form_field in form.fields:
        words.update(form_field.labels.values())
        for choice in form_field.choices:
            words.update(choice.labels.values())
    return sorted(word for word in words - EVERYDAY if len(word) >= 2)


def check_groups(emulator: TelegramEmulator, config: Config, figures: Figures) -> None:
    """No message or edit to a group chat holds a household answer or a phone number."""
    words = household_words(config)
    for request in emulator.requests:
        chat_id = request.params.get("chat_id")
        if request.status != 200 or not isinstance(chat_id, int) or chat_id >= 0:
            continue
        said = f"{request.params.get('text') or ''} {request.params.get('caption') or ''}"
        leaked = [word for word in words if word in said] + PHONE.findall(said)
        if leaked:
            figures.group_leaks += 1
            figures.problems.append(f"group {chat_id} got {leaked}: {said[:120]!r}")


def check_logs(logs: dict[str, str], token: str, figures: Figures) -> None:
    secret = token.split(":", 1)[1]
    for name, log in logs.items():
        if token in log or secret in log:
            figures.token_in_logs += 1
            figures.problems.append(f"the bot token appears in the log of {name}")


async def check_day(
    session: AsyncSession,
    emulator: TelegramEmulator,
    config: Config,
    logs: dict[str, str],
    figures: Figures,
) -> Figures:
    await check_reports(session, emulator, figures)
    await check_notices(session, emulator, figures)
    await check_ladder(session, emulator, config, figures)
    check_groups(emulator, config, figures)
    check_logs(logs, config.telegram.token.get_secret_value(), figures)
    return figures
