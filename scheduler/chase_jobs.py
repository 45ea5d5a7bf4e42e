"""The clock's work for chasing (``models.chase``): the ladder's sweep every
``[chase] sweep_every_s``, and the daily summary once its time has come (charts drawn in a
worker thread, off the event loop)."""

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime

from aiogram.utils.i18n import I18n
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.chase import ladder_of, summary_time_of
from bot.config import Config
from bot.i18n import LOCALES
from models.base import utcnow
from models.chase_sweep import sweep
from models.summary import DaySummaries, NodeSummary, collect_summaries, summary_pending
from models.summary_chart import ChartWords, draw_chart
from models.summary_send import DrawnFor, queue_summaries

logger = logging.getLogger(__name__)

# Seconds between looks for a summary due.
SUMMARY_SWEEP_S = 60


async def sweep_ladder(
    session_factory: async_sessionmaker[AsyncSession], config: Config, now: datetime | None = None
) -> int:
    """Returns how many messages the steps that fell due queued."""
    async with session_factory() as session:
        result = await sweep(session, ladder_of(config), now)
    for fired in result.fired:
        logger.info(
            "chase step %s of round %d: %d nodes told, %d messages",
            fired.step,
            fired.round_id,
            fired.nodes,
            fired.messages,
        )
    for round_id, step, outcome in result.passed:
        logger.info("chase step %s of round %d %s", step, round_id, outcome.value)
    return result.messages


async def send_daily_summary(
    session_factory: async_sessionmaker[AsyncSession],
    config: Config,
    i18n: I18n,
    now: datetime | None = None,
    fonts: Sequence[str] | None = None,
) -> int:
    """The day's summary with its charts, once; returns the messages queued."""
    moment = now or utcnow()
    schedule = summary_time_of(config)
    async with session_factory() as session:
        day = await summary_pending(session, schedule, moment)
        if day is None:
            return 0
        collected = await collect_summaries(session, schedule, day, config.admins.telegram_ids)
    charts = await draw_charts(collected, i18n, config.i18n.default_locale, fonts)
    async with session_factory() as session:
        queued = await queue_summaries(session, collected, charts, moment)
    if queued:
        logger.info("daily summary of %s: %d messages", day, queued)
    return queued


async def draw_charts(
    collected: DaySummaries, i18n: I18n, default_locale: str, fonts: Sequence[str] | None
) -> dict[tuple[str, str | None], DrawnFor]:
    """One chart per summary and reader's language."""
    charts: dict[tuple[str, str | None], DrawnFor] = {}
    if collected.round_id is None:
        return charts
    day = collected.day.isoformat()
    for summary in collected.summaries:
        if not summary.bars:
            continue
        for locale in {reader.locale for reader in summary.readers}:
            words = chart_words(i18n, locale if locale in LOCALES else default_locale, summary, day)
            ascii_words = chart_words(i18n, "en", None, day)
            drawn = await asyncio.to_thread(draw_chart, summary.bars, words, ascii_words, fonts)
            charts[(summary.key, locale)] = DrawnFor(drawn.png, drawn.codes)
    return charts


def chart_words(i18n: I18n, locale: str, summary: NodeSummary | None, day: str) -> ChartWords:
    """The chart's words in ``locale``; without a summary, a title free of node names (for a
    chart that cannot show them)."""

    def word(key: str) -> str:
        return i18n.gettext(key, locale=locale)

    if summary is None:
        title = word("chase.chart_title_codes").format(date=day)
    else:
        scope = summary.path or word("chase.county")
        title = word("chase.chart_title").format(scope=scope, date=day)
    return ChartWords(
        title=title,
        reported=word("chase.chart_reported"),
        nobody_home=word("chase.chart_nobody_home"),
        missing=word("chase.chart_missing"),
        axis=word("chase.chart_axis"),
    )
