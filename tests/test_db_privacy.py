"""A failing statement never puts the phones and names it carried into the logs."""

import logging
import traceback

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.org import Member

PHONE = "+8613912345678"
NAME = "隐私测试员"


async def test_a_failing_statement_logs_neither_the_phone_nor_the_name(
    session_factory: async_sessionmaker[AsyncSession], caplog: pytest.LogCaptureFixture
) -> None:
    handler_logger = logging.getLogger("handlers.errors")
    # The engine logs statements and their parameters whenever its logger is at INFO.
    with caplog.at_level(logging.DEBUG), caplog.at_level(logging.INFO, logger="sqlalchemy.engine"):
        async with session_factory() as session:
            # telegram_id is NOT NULL: the insert fails inside the database, which on
            # PostgreSQL explains the failure with the whole row.
            session.add(Member(telegram_id=None, name=NAME, phone=PHONE))
            with pytest.raises(IntegrityError) as raised:
                await session.flush()
            # As handlers/errors.py logs a handler's failure.
            handler_logger.error("update 1 failed", exc_info=raised.value)
            await session.rollback()

    assert any(record.name.startswith("sqlalchemy.engine") for record in caplog.records)
    assert any(record.exc_info for record in caplog.records)
    written = caplog.text + "\n".join(traceback.format_exception(raised.value))
    assert "INSERT INTO members" in written
    assert PHONE not in written
    assert NAME not in written
