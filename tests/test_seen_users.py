"""Everyone the bot hears from is remembered once, and found by @username or id."""

from typing import Any

import pytest
from aiogram.types import User
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import bot.seen_users
from bot.seen_users import SeenUsersMiddleware
from models.org import Member
from models.people import SeenUser
from models.refusals import Refused
from models.registration import get_or_create_member
from models.seen_users import person_to_appoint, record_seen_user, seen_by_username


async def test_a_username_stays_with_whoever_was_seen_with_it_last(session: AsyncSession) -> None:
    await record_seen_user(session, 7001, "Shared", "甲", "zh_Hans")
    await record_seen_user(session, 7002, "shared", "乙", "en")
    assert [row.telegram_id for row in await seen_by_username(session, "@SHARED")] == [7002]
    appointed = await person_to_appoint(session, "@Shared")
    assert appointed is not None
    assert (appointed.telegram_id, appointed.name, appointed.locale) == (7002, "乙", "en")
    # The same person seen again with new details: still one row.
    await record_seen_user(session, 7002, None, "乙二", "en")
    assert await session.scalar(select(func.count()).select_from(SeenUser)) == 2
    assert await seen_by_username(session, "shared") == []
    again = await session.scalar(select(SeenUser).where(SeenUser.telegram_id == 7002))
    assert again is not None
    await session.refresh(again)
    assert (again.name, again.username, again.locale) == ("乙二", None, "en")


async def test_forged_details_are_cleaned(session: AsyncSession) -> None:
    await record_seen_user(session, 7201, "no spaces!", "名\x00字\n", None)
    row = await session.get(SeenUser, 7201)
    assert row is not None and (row.username, row.name) == (None, "名字")


async def test_ids_and_members_without_a_seen_row(session: AsyncSession) -> None:
    assert await person_to_appoint(session, "12345") is None
    assert await person_to_appoint(session, str(2**64)) is None
    assert await person_to_appoint(session, "0") is None
    await record_seen_user(session, 12345, None, "丙", None)
    found = await person_to_appoint(session, "12345")
    assert found is not None and found.name == "丙"
    # Members recorded before anyone was seen with the name: two of them name nobody.
    await get_or_create_member(session, 7101, "丁", None, None, "old_name")
    await get_or_create_member(session, 7102, "戊", None, None, "old_name")
    await session.commit()
    with pytest.raises(Refused) as refused:
        await person_to_appoint(session, "@old_name")
    assert refused.value.params == {"username": "old_name", "count": 2}
    assert await session.scalar(select(func.count()).select_from(Member)) == 3


async def test_the_middleware_writes_only_what_changed(
    session_factory: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[tuple[Any, ...]] = []

    async def counting(session: AsyncSession, *args: Any) -> None:
        writes.append(args)
        await record_seen_user(session, *args)

    monkeypatch.setattr(bot.seen_users, "record_seen_user", counting)
    middleware = SeenUsersMiddleware(session_factory, "zh_Hans")

    async def handler(event: Any, data: dict[str, Any]) -> str:
        return "handled"

    user = User(id=8001, is_bot=False, first_name="庚", username="Geng", language_code="en")
    for _ in range(3):
        assert await middleware(handler, object(), {"event_from_user": user}) == "handled"
    renamed = user.model_copy(update={"username": "geng2"})
    await middleware(handler, object(), {"event_from_user": renamed})
    robot = User(id=8002, is_bot=True, first_name="bot")
    await middleware(handler, object(), {"event_from_user": robot})
    assert writes == [(8001, "geng", "庚", "en"), (8001, "geng2", "庚", "en")]
    async with session_factory() as session:
        row = await session.get(SeenUser, 8001)
        assert row is not None and row.username == "geng2"
