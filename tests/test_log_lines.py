"""What the log says to a person running the county: routine library lines only at DEBUG,
a line per notice sent, and the hourly traffic line."""

import logging
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.logging_setup import setup_logging
from models.base import utcnow
from models.notices import NoticeDraft, create_notice
from models.outbox.table import OutboxMessage, OutboxStatus, enqueue
from models.system import HandledUpdate
from models.updates import claim_update
from scheduler.jobs import log_traffic
from tests.fixtures import say
from tests.test_notices import ADMIN, COUNTY_WIDE, county


@pytest.mark.usefixtures("restored_logging")
@pytest.mark.parametrize("level", ["INFO", "WARNING"])
def test_routine_library_lines_show_only_at_debug(level: str) -> None:
    setup_logging(level, [])
    for name in ("alembic.runtime.migration", "apscheduler.executors.default", "aiogram.event"):
        routine = logging.getLogger(name)
        assert not routine.isEnabledFor(logging.INFO)
        assert routine.isEnabledFor(logging.WARNING)  # errors and missed runs still show
    assert logging.getLogger("bot.cli_commands").isEnabledFor(logging.getLevelName(level))


@pytest.mark.usefixtures("restored_logging")
def test_at_debug_the_routine_lines_show_too() -> None:
    setup_logging("DEBUG", [])
    assert logging.getLogger("apscheduler.executors.default").isEnabledFor(logging.INFO)
    assert logging.getLogger("alembic.runtime.migration").isEnabledFor(logging.DEBUG)


@pytest.mark.usefixtures("restored_logging")
@pytest.mark.parametrize("level", ["DEBUG", "INFO", "WARNING"])
def test_the_database_drivers_trace_stays_out_of_debug_logs(level: str) -> None:
    setup_logging(level, [])
    driver = logging.getLogger("aiosqlite")
    assert not driver.isEnabledFor(logging.DEBUG)
    assert driver.isEnabledFor(logging.WARNING)
    assert driver.isEnabledFor(logging.INFO) == (level != "WARNING")


async def test_a_notice_sent_is_a_line_in_the_log(
    session: AsyncSession, caplog: pytest.LogCaptureFixture
) -> None:
    await county(session)
    draft = NoticeDraft(
        author_telegram_id=ADMIN,
        scope_node_id=None,
        levels=["building", "unit"],
        wants_ack=True,
        send_at=None,
        text="明天停水",
    )
    with caplog.at_level(logging.INFO, logger="models.notices"):
        notice = await create_notice(session, draft, COUNTY_WIDE)
    assert f"notice {notice.id} to the county: 3 members, 0 group chats" in caplog.messages
    assert "明天停水" not in caplog.text


async def test_the_hourly_traffic_line_counts_the_last_hour(
    session: AsyncSession,
    session_factory: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    for update_id in (1, 2, 3):
        await claim_update(session, 42, update_id)
    await session.execute(
        update(HandledUpdate)
        .where(HandledUpdate.update_id == 1)
        .values(handled_at=utcnow() - timedelta(hours=2))
    )
    await enqueue(session, [say(100 + index, f"message {index}") for index in range(5)])
    await session.commit()
    now, long_ago = utcnow(), utcnow() - timedelta(hours=3)
    settle = {
        100: {"status": OutboxStatus.sent, "sent_at": now},
        101: {"status": OutboxStatus.sent, "sent_at": now},
        102: {"status": OutboxStatus.sent, "sent_at": long_ago, "created_at": long_ago},
        103: {"status": OutboxStatus.unreachable},
    }
    for chat_id, values in settle.items():
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.chat_id == chat_id).values(**values)
        )
    await session.commit()

    with caplog.at_level(logging.INFO, logger="scheduler.jobs"):
        traffic = await log_traffic(session_factory)
    assert (traffic.updates_in, traffic.sent, traffic.not_delivered, traffic.waiting) == (
        2,
        2,
        1,
        1,
    )
    assert (
        "traffic, last 1:00:00: 2 updates in, 2 messages sent, 1 not delivered; 1 waiting"
        in caplog.messages
    )
