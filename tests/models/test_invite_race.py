"""One invite, two people: confirmed at the same moment, one holds the post and the other is
told the link was used — never both "registered", never the first replaced."""

import asyncio
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.invite_batch import invite_to_post
from models.invites import InviteStatus, lookup_invite
from models.org import Member, Post, Role
from models.registration import RegistrationResult, register_by_invite
from tests.fixtures import small_tree


async def test_two_people_confirming_one_link_at_once_get_one_post(
    session: AsyncSession, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    tree = await small_tree(session)
    grid_id = tree.grid.id
    row = await invite_to_post(
        session, tree.grid, Role.officer, timedelta(days=1), None, lambda token: token
    )
    lookup = await lookup_invite(session, row.token)
    assert lookup.status is InviteStatus.valid and lookup.invite_id is not None
    invite_id = lookup.invite_id

    async def confirm(telegram_id: int, name: str, phone: str) -> RegistrationResult:
        async with session_factory() as own:
            outcome = await register_by_invite(
                own, invite_id, telegram_id=telegram_id, name=name, phone=phone, locale=None
            )
            return outcome.result

    results = await asyncio.gather(
        confirm(5001, "甲", "+8613900000001"), confirm(5002, "乙", "+8613900000002")
    )
    assert sorted(results) == sorted([RegistrationResult.bound, RegistrationResult.invite_invalid])
    session.expire_all()
    post = await session.scalar(
        select(Post).where(Post.node_id == grid_id, Post.role == Role.officer)
    )
    assert post is not None and post.holder_id is not None
    holder = await session.get(Member, post.holder_id)
    winner = 5001 if results[0] is RegistrationResult.bound else 5002
    assert holder is not None and holder.telegram_id == winner
    # The link is spent: a third try is refused too.
    assert (await lookup_invite(session, row.token)).status is not InviteStatus.valid
