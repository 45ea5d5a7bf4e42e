"""A scheduled notice can be cancelled by its author before it goes, and one whose author
no longer holds its scope when it is due is not sent; the author is told."""

from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import Application
from models.base import utcnow
from models.notices import Notice, NoticeStatus
from scheduler.notice_jobs import dispatch_scheduled_notices
from tests.emulator import BotMessage, EmuUser, TelegramEmulator
from tests.fixtures import GRID
from tests.handlers.fixtures import (
    bound_compound,
    press_forged,
)

UNIT_2_LEAD = "单元长 · 1号楼/2单元"
PRIVATE_ONLY = "只能在与我的私聊中使用"


# --- what a decider has before them --------------------------------------------------


def row_labels(message: BotMessage) -> list[str]:
    return [text for row in message.buttons() for text, _ in row]


# --- scheduled notices (#4) ----------------------------------------------------------


async def schedule_notice(author: EmuUser, text: str, scope_button: str) -> BotMessage:
    """Composes a notice for two hours from now; returns the author's "scheduled" message."""
    author.mark_read()
    await author.send("/notice")
    await author.next_message()
    await author.send(text)
    await author.press(await author.next_message(), scope_button)
    await author.press(await author.next_message(), "下一步 ▶")
    await author.press(await author.next_message(), "需要确认")
    await author.press(await author.next_message(), "定时发送")
    await author.next_message()
    later = (utcnow() + timedelta(hours=2)).astimezone(ZoneInfo("Asia/Shanghai"))
    await author.send(later.strftime("%Y-%m-%d %H:%M"))
    assert "预览" in (await author.next_message()).text
    await author.next_message()
    await author.press(await author.next_message(), "✅ 确认发送")
    scheduled = await author.next_message()
    assert "将于" in scheduled.text
    return scheduled


async def notice_comes_due(application: Application) -> None:
    async with application.session_factory() as session:
        await session.execute(
            update(Notice)
            .where(Notice.status == NoticeStatus.scheduled)
            .values(send_at=utcnow() - timedelta(minutes=1))
        )
        await session.commit()
    await dispatch_scheduled_notices(application.session_factory, application.config)
    application.sender.wake()


async def notice_statuses(session_factory: async_sessionmaker[AsyncSession]) -> list[str]:
    async with session_factory() as session:
        return list(await session.scalars(select(Notice.status).order_by(Notice.id)))


async def test_the_author_cancels_a_scheduled_notice_before_it_goes(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    _, people = await bound_compound(emulator, session_factory)
    wang, zhao, sun = people["wang"], people["zhao"], people["sun"]
    scheduled = await schedule_notice(wang, "周六停水", GRID)
    assert row_labels(scheduled) == ["取消发送"]
    # Someone else's press is refused (a forwarded message, a forged button).
    refused = await emulator.callback_answer(
        await press_forged(emulator, zhao, scheduled, "ncancel:1")
    )
    assert refused["show_alert"] and "发布人" in str(refused["text"])
    await wang.press(scheduled, "取消发送")
    await emulator.wait_until(lambda: "已取消" in (scheduled.text or ""))
    assert scheduled.buttons() == []
    assert await notice_statuses(session_factory) == [NoticeStatus.cancelled]

    zhao.mark_read()
    sun.mark_read()
    await notice_comes_due(application)
    assert await notice_statuses(session_factory) == [NoticeStatus.cancelled]
    assert "周六停水" not in "".join(m.text or "" for m in zhao.messages() + sun.messages())


async def test_a_scheduled_notice_is_not_sent_once_its_author_left_the_post(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    _, people = await bound_compound(emulator, session_factory)
    wang, zhao = people["wang"], people["zhao"]
    await schedule_notice(wang, "周日全员核酸", GRID)
    wang.mark_read()
    await wang.send("/leave")
    await wang.press(await wang.next_message(), f"网格长 · {GRID}")
    await wang.press(await wang.next_message(), "确定卸任")
    assert "您已卸任" in (await wang.next_message()).text

    zhao.mark_read()
    await notice_comes_due(application)
    assert await notice_statuses(session_factory) == [NoticeStatus.cancelled]
    told = await wang.next_message(timeout=10)
    assert "#1" in told.text and "没有发出" in told.text
    texts = "".join(m.text or "" for m in zhao.messages())
    assert "周日全员核酸" not in texts
