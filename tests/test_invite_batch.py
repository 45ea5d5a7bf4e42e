"""Inviting to vacant posts: who may, and old links withdrawn only once new ones went out."""

from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from models.access import Scope, scope_of
from models.invite_batch import invite_to_post, invite_vacant_posts
from models.invites import (
    InviteStatus,
    lookup_invite,
    withdraw_earlier_invites,
    withdraw_tokens,
)
from models.org import Role
from models.posts import node_by_path
from models.refusals import Refused
from tests.fixtures import small_tree

TTL = timedelta(days=14)
COMMAND_CENTRE = Scope(is_admin=True, roots=frozenset())


def link(token: str) -> str:
    return f"https://t.me/wuji_bot?start={token}"


async def test_a_lead_invites_below_itself_and_nowhere_else(session: AsyncSession) -> None:
    tree = await small_tree(session)
    grid_lead = await scope_of(session, tree.grid_lead.telegram_id, [])
    # The grid's vacant officer post: in the grid lead's own subtree.
    row = await invite_to_post(session, tree.grid, Role.officer, TTL, 201, link, scope=grid_lead)
    assert row.path == tree.grid.path and row.role == "officer"
    with pytest.raises(Refused) as refused:
        await invite_vacant_posts(session, tree.zone, TTL, 201, link, scope=grid_lead)
    assert refused.value.key == "invite.not_yours"
    stranger = await scope_of(session, 999, [])
    with pytest.raises(Refused):
        await invite_to_post(session, tree.grid, Role.officer, TTL, 999, link, scope=stranger)


async def test_old_links_keep_working_until_the_new_sheet_is_delivered(
    session: AsyncSession,
) -> None:
    tree = await small_tree(session)
    grid = await node_by_path(session, tree.grid.path)
    assert grid is not None
    (first,) = await invite_vacant_posts(session, grid, TTL, 1, link, scope=COMMAND_CENTRE)
    (second,) = await invite_vacant_posts(
        session, grid, TTL, 1, link, scope=COMMAND_CENTRE, withdraw_earlier=False
    )
    # The new sheet did not arrive: its links go, the first still works.
    await withdraw_tokens(session, {second.post_id: second.token})
    assert (await lookup_invite(session, first.token)).status is InviteStatus.valid
    assert (await lookup_invite(session, second.token)).status is InviteStatus.revoked

    (third,) = await invite_vacant_posts(
        session, grid, TTL, 1, link, scope=COMMAND_CENTRE, withdraw_earlier=False
    )
    assert (await lookup_invite(session, first.token)).status is InviteStatus.valid
    # Delivered: now, and only now, the older link stops working.
    await withdraw_earlier_invites(session, {third.post_id: third.token}, 1)
    assert (await lookup_invite(session, first.token)).status is InviteStatus.revoked
    assert (await lookup_invite(session, third.token)).status is InviteStatus.valid
