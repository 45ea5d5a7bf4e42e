"""The daily summary: once a day, caught up once, with a chart drawn in Chinese when a CJK
font is installed and in node codes otherwise; the chart goes out as an uploaded photo."""

from datetime import timedelta

from aiogram.methods import SendPhoto
from aiogram.types import BufferedInputFile
from aiogram.utils.i18n import I18n
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Config
from handlers.outbound import TelegramRenderer
from models.charts import ChartImage, chart_contents
from models.forms import Form
from models.messages import Chart, Text, decode
from models.outbox.delivery import ClaimedMessage
from models.outbox.table import OutboxMessage
from models.rounds import open_round
from models.summary_chart import cjk_font_paths
from scheduler.chase_jobs import send_daily_summary
from tests.test_chase import (
    DAY,
    SCHEDULE,
    UNIT_1,
    UNIT_3,
    at,
    county,
    form,
    i18n,
    report_all_but,
)

__all__ = ["form", "i18n"]
PNG = b"\x89PNG\r\n\x1a\n"


def config() -> Config:
    settings = Config()
    settings.admins.telegram_ids = [900_001]
    return settings


async def queued(session: AsyncSession) -> list[tuple[int, Text | Chart]]:
    rows = await session.execute(
        select(OutboxMessage.chat_id, OutboxMessage.payload).order_by(OutboxMessage.id)
    )
    found: list[tuple[int, Text | Chart]] = []
    for chat_id, payload in rows:
        content, _ = decode(payload)
        assert isinstance(content, Text | Chart)
        found.append((chat_id, content))
    return found


async def test_the_summary_goes_once_a_day_with_its_chart(
    session: AsyncSession,
    session_factory: async_sessionmaker[AsyncSession],
    form: Form,
    i18n: I18n,
) -> None:
    report_round = await county(session, form)
    await report_all_but(session, report_round.id, UNIT_1, UNIT_3)
    assert await send_daily_summary(session_factory, config(), i18n, at(17, 59)) == 0
    # Down at 18:00; back at 18:20: sent once, and never again that day.
    sent = await send_daily_summary(session_factory, config(), i18n, at(18, 20))
    assert await send_daily_summary(session_factory, config(), i18n, at(18, 21)) == 0
    assert await send_daily_summary(session_factory, config(), i18n, at(23, 59)) == 0
    messages = await queued(session)
    assert sent == len(messages)
    readers = {chat_id for chat_id, _ in messages}
    assert readers == {41, 42, 51, 52, 900_001}  # grid and zone posts, the command centre
    texts = {chat_id: content for chat_id, content in messages if isinstance(content, Text)}
    charts = [content for _, content in messages if isinstance(content, Chart)]
    assert len(charts) == len(readers)
    grid = texts[41]
    assert grid.key == "chase.summary"
    assert grid.params["late_units"] == 2 and grid.params["missing"] == 8
    assert grid.params["expected"] == 12 and grid.params["done"] == 4
    images = await chart_contents(session, {chart.image_id for chart in charts})
    assert images and all(image.startswith(PNG) for image in images.values())

    # The chart goes as an upload, with its caption, in the reader's language.
    chart = charts[0]
    method = TelegramRenderer(i18n).render(
        ClaimedMessage(
            id=1,
            chat_id=41,
            member_id=None,
            content=chart,
            actions=(),
            attempts=0,
            image=images[chart.image_id],
        )
    )
    assert isinstance(method, SendPhoto) and isinstance(method.photo, BufferedInputFile)
    assert method.photo.data.startswith(PNG)
    assert method.caption and "上报进度" in method.caption


async def test_chart_labels_are_chinese_with_a_cjk_font_and_codes_without(
    session: AsyncSession,
    session_factory: async_sessionmaker[AsyncSession],
    form: Form,
    i18n: I18n,
) -> None:
    report_round = await county(session, form)
    await report_all_but(session, report_round.id, UNIT_1)
    # No CJK font at all: codes, and a caption that says which is which.
    await send_daily_summary(session_factory, config(), i18n, at(18), fonts=())
    captions = [c.caption for _, c in await queued(session) if isinstance(c, Chart)]
    assert captions and all(c and c.key == "chase.chart_caption_codes" for c in captions)
    grid_caption = next(c for c in captions if c and "B1" in str(c.params["legend"]))
    assert grid_caption.params["legend"] == "B1 1号楼 · B2 2号楼"

    # The next day, with the fonts the machine has: Chinese labels when one covers them.
    await open_round(session, SCHEDULE, form, DAY + timedelta(days=1))
    next_round_day = at(18) + timedelta(days=1)
    await send_daily_summary(session_factory, config(), i18n, next_round_day)
    keys = {
        c.caption.key
        for _, c in (await queued(session))[len(captions) * 2 :]
        if isinstance(c, Chart) and c.caption
    }
    expected = "chase.chart_caption" if cjk_font_paths() else "chase.chart_caption_codes"
    assert keys == {expected}
    assert await session.scalar(select(func.count()).select_from(ChartImage)) >= 2
