"""Builders for the console's tests: the example county in the middle of today's round,
reports saved through the domain as chat saves them, and the console's web app."""

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Config
from bot.console import ConsoleDeps, setup_console
from bot.forms import DEFAULT_FORM_PATH
from bot.i18n import create_i18n
from models.access import Scope
from models.base import as_utc
from models.form_parse import load_form
from models.report_saving import Consequences, save_report
from models.reports import Reporter
from models.rounds import HouseholdReport, ReportHow, ReportRound, RoundSchedule, open_round
from tests.fixtures import import_example_county

ADMIN_ID = 900_001
TIMEZONE = "Asia/Shanghai"
# Open all day, so that today's round is open whenever the tests run; due at 10:00.
SCHEDULE = RoundSchedule(time(0), time(10), time(0), TIMEZONE)
SETTINGS = Consequences(nobody_home_flag_after=3, command_centre=(ADMIN_ID,))
CALM: dict[str, Any] = {
    "people_at_home": 3,
    "symptoms": 0,
    "test_status": "negative",
    "isolation": "none",
    "vulnerable": ["aged_80_plus"],
    "needs": [],
    "note": "一切正常",
}
COMMAND_CENTRE = Reporter(ADMIN_ID, None, Scope(is_admin=True, roots=frozenset()))


def today() -> Any:
    return datetime.now(ZoneInfo(TIMEZONE)).date()


async def county_in_round(session: AsyncSession, day: Any = None) -> ReportRound:
    """The example county (18 + 22 households, every post vacant) and the round of ``day``
    (today) opened: every household expected."""
    await import_example_county(session)
    return await open_round(session, SCHEDULE, load_form(DEFAULT_FORM_PATH), day or today())


async def save(
    session: AsyncSession,
    report_round: ReportRound,
    household_id: int,
    how: ReportHow = ReportHow.form,
    *,
    late: bool = False,
    answers: dict[str, Any] | None = None,
) -> None:
    """Saved as the command centre saves a vacant unit's report in chat: in time (an hour
    after the round opened) or late (an hour after it was due)."""
    revision = await session.scalar(
        select(HouseholdReport.revision).where(
            HouseholdReport.round_id == report_round.id,
            HouseholdReport.household_id == household_id,
        )
    )
    moment = as_utc(report_round.due_at if late else report_round.opens_at) + timedelta(hours=1)
    await save_report(
        session,
        COMMAND_CENTRE,
        SETTINGS,
        round_id=report_round.id,
        household_id=household_id,
        revision=int(revision or 0),
        how=how,
        answers=(answers or CALM) if how is ReportHow.form else None,
        now=moment,
    )


def console_config(db_url: str, base_url: str = "http://127.0.0.1") -> Config:
    config = Config()
    config.database.url = db_url
    config.admins.telegram_ids = [ADMIN_ID]
    config.console.enabled = True
    config.console.base_url = base_url
    config.console.poll_every_s = 0.2
    config.reports.open_time = time(0)
    return config


def console_app(
    config: Config, session_factory: async_sessionmaker[AsyncSession]
) -> web.Application:
    app = web.Application()
    setup_console(app, ConsoleDeps(config, session_factory, create_i18n("zh_Hans")))
    return app
