"""A crash right after an event's commit loses none of its messages.

Each event (registering, leaving, a revoke, an assignment, a claim, a decision) queues its
messages in its own transaction (``models.notify.tell``). Here the process "dies" the moment
the event's commit returns: the commit goes through, then the domain function is stopped by
an exception, so nothing after it runs (no reply, no handler code, and no sender was
running). A bot started afresh must then deliver every message of the event, exactly once.
"""

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Config
from models.access import scope_of
from models.assignments import assign_post, revoke_post
from models.claim_links import offer_claim
from models.claims import decide_claim, open_claim
from models.groups import bind_group
from models.invites import create_invites, lookup_invite
from models.org import Role
from models.registration import get_or_create_member, register_by_invite
from models.resignation import leave_post
from tests.emulator import Limits, TelegramEmulator
from tests.fixtures import (
    BUILDING,
    GRID,
    UNIT,
    ZONE,
    deliver_queued,
    delivered,
    emulated_config,
    hold_post,
    import_example_county,
    node_at,
    post_id,
    started,
)

TOKEN = "123456:TEST-wuji-crash-after-commit"
ADMIN_ID = 900_001
ZONE_LEAD, GRID_LEAD, BUILDING_LEAD, VOLUNTEER, NEWCOMER = 3001, 3002, 3003, 5001, 5002
GROUP_ID = -5001


class ProcessDied(Exception):
    """Stands for the process dying: raised the moment a commit has gone through."""


def crash_after_commit(session: AsyncSession, monkeypatch: pytest.MonkeyPatch) -> None:
    """The session's next commit goes through, and then the process dies."""
    commit = session.commit

    async def commit_then_die() -> None:
        await commit()
        raise ProcessDied

    monkeypatch.setattr(session, "commit", commit_then_die)


@dataclass(frozen=True)
class Expected:
    """The message the event owes: to whom, a phrase of it, and the buttons it carries."""

    chat_id: int
    says: str
    buttons: tuple[str, ...] = ()


# Sets the scene (committed), then returns the event itself, to run with the crash armed,
# and the message the event owes.
Prepare = Callable[[AsyncSession], Awaitable[tuple[Callable[[], Awaitable[object]], Expected]]]


async def invite_id(session: AsyncSession, path: str, role: str = "lead") -> int:
    tokens = await create_invites(session, [await post_id(session, path, role)], timedelta(1), None)
    await session.commit()
    lookup = await lookup_invite(session, next(iter(tokens.values())))
    assert lookup.invite_id is not None
    return lookup.invite_id


async def registration(session: AsyncSession) -> tuple[Callable[[], Awaitable[object]], Expected]:
    await hold_post(session, ZONE_LEAD, ZONE, name="张建国")
    invite = await invite_id(session, GRID)

    def event() -> Awaitable[object]:
        return register_by_invite(
            session, invite, NEWCOMER, "王芳", "8613909710002", "zh_Hans", None, [ADMIN_ID]
        )

    return event, Expected(ZONE_LEAD, "王芳 已登记为")


async def registration_held(
    session: AsyncSession,
) -> tuple[Callable[[], Awaitable[object]], Expected]:
    invite = await invite_id(session, UNIT)  # the roster names 13909710005 for this post

    def event() -> Awaitable[object]:
        return register_by_invite(
            session, invite, NEWCOMER, "马秀兰", "+8613900000000", "zh_Hans", None, [ADMIN_ID]
        )

    return event, Expected(ADMIN_ID, "手机号与花名册不一致", ("✅ 同意", "❌ 不同意"))


async def leaving(session: AsyncSession) -> tuple[Callable[[], Awaitable[object]], Expected]:
    await hold_post(session, ZONE_LEAD, ZONE, name="张建国")
    member = await hold_post(session, GRID_LEAD, GRID, name="王芳")
    grid_lead = await post_id(session, GRID)

    def event() -> Awaitable[object]:
        return leave_post(session, grid_lead, member.id, GRID_LEAD, [ADMIN_ID])

    return event, Expected(ZONE_LEAD, "王芳 已卸任")


async def revoke(session: AsyncSession) -> tuple[Callable[[], Awaitable[object]], Expected]:
    await hold_post(session, GRID_LEAD, GRID, name="王芳")
    grid = await node_at(session, GRID)

    def event() -> Awaitable[object]:
        return revoke_post(session, grid, Role.lead, ADMIN_ID)

    return event, Expected(GRID_LEAD, "县指挥部已解除您的")


async def assignment(session: AsyncSession) -> tuple[Callable[[], Awaitable[object]], Expected]:
    member = await get_or_create_member(session, GRID_LEAD, "王芳", None, "zh_Hans")
    await session.commit()
    grid = await node_at(session, GRID)

    def event() -> Awaitable[object]:
        return assign_post(session, grid, Role.lead, member, ADMIN_ID)

    return event, Expected(GRID_LEAD, "县指挥部已任命您为")


async def claim_link(session: AsyncSession) -> int:
    """The volunteer tapped 1号楼/1单元's lead post in 阳光小区's bound group: the id of the
    claim link the tap issued."""
    admin = await scope_of(session, ADMIN_ID, [ADMIN_ID])
    grid = await node_at(session, GRID)
    await bind_group(session, GROUP_ID, "阳光小区志愿者群", grid.id, admin, ADMIN_ID)
    unit_lead = await post_id(session, UNIT)
    offer = await offer_claim(session, GROUP_ID, unit_lead, VOLUNTEER, max_open_per_member=1)
    assert offer.check.token_id is not None, offer
    return offer.check.token_id


async def claim(session: AsyncSession) -> tuple[Callable[[], Awaitable[object]], Expected]:
    await hold_post(session, BUILDING_LEAD, BUILDING, name="赵强")
    link = await claim_link(session)

    def event() -> Awaitable[object]:
        return open_claim(
            session, link, VOLUNTEER, "刘志愿", "+8613909719999", "zh_Hans", None, [ADMIN_ID]
        )

    return event, Expected(
        BUILDING_LEAD, "刘志愿（手机 +8613909719999）申请认领", ("✅ 同意", "❌ 不同意")
    )


async def decision(session: AsyncSession) -> tuple[Callable[[], Awaitable[object]], Expected]:
    await hold_post(session, BUILDING_LEAD, BUILDING, name="赵强")
    opened = await open_claim(
        session, await claim_link(session), VOLUNTEER, "刘志愿", "+8613909719999", "zh_Hans"
    )
    assert opened.claim_id is not None
    claim_id = opened.claim_id
    decider = await scope_of(session, BUILDING_LEAD, [ADMIN_ID])

    def event() -> Awaitable[object]:
        return decide_claim(session, claim_id, True, decider, BUILDING_LEAD)

    return event, Expected(VOLUNTEER, "已获批准")


EVENTS: dict[str, Prepare] = {
    "registration": registration,
    "registration held for the command centre": registration_held,
    "leave": leaving,
    "revoke": revoke,
    "assign": assignment,
    "claim": claim,
    "decision": decision,
}


@pytest.fixture
async def emulator() -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator(token=TOKEN, limits=Limits(time_scale=10)) as emulator:
        yield emulator


@pytest.fixture
def config(emulator: TelegramEmulator, db_url: str) -> Config:
    return emulated_config(emulator, db_url, [ADMIN_ID])


def buttons_of(emulator: TelegramEmulator, chat_id: int) -> tuple[str, ...]:
    (request,) = emulator.sent(method="sendMessage", chat_id=chat_id)
    markup = request.params.get("reply_markup") or {}
    return tuple(button["text"] for row in markup.get("inline_keyboard", []) for button in row)


@pytest.mark.parametrize("name", list(EVENTS))
async def test_a_crash_right_after_the_events_commit_loses_no_message(
    name: str,
    emulator: TelegramEmulator,
    config: Config,
    session_factory: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started(emulator, ADMIN_ID, ZONE_LEAD, GRID_LEAD, BUILDING_LEAD, VOLUNTEER, NEWCOMER)
    async with session_factory() as session:
        await import_example_county(session)
        event, expected = await EVENTS[name](session)
        crash_after_commit(session, monkeypatch)
        with pytest.raises(ProcessDied):
            await event()
    assert delivered(emulator, expected.chat_id) == []  # nothing was sending

    await deliver_queued(config, session_factory)  # the bot, started again
    await deliver_queued(config, session_factory)  # and again: what went, goes once
    (text,) = delivered(emulator, expected.chat_id)
    assert expected.says in text
    assert buttons_of(emulator, expected.chat_id) == expected.buttons
