"""Issuing invites for one post or for every vacant post of a subtree."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.access import Scope
from models.invites import create_invites
from models.org import Node, Post, Role, under
from models.refusals import Refused


@dataclass(frozen=True)
class InviteRow:
    path: str
    level: str
    role: str
    roster_name: str
    roster_phone: str
    link: str
    post_id: int = 0
    token: str = ""


def may_invite(scope: Scope, node: Node) -> bool:
    """The command centre invites anywhere; a lead or officer to the posts of its own
    subtree (its own node's other post included)."""
    return scope.is_admin or scope.sees(node)


async def invite_to_post(
    session: AsyncSession,
    node: Node,
    role: Role,
    ttl: timedelta,
    actor: int | None,
    link_for: Callable[[str], str],
    *,
    scope: Scope | None = None,
) -> InviteRow:
    """A new link for one vacant post; ``scope`` (None: the county's own tools) must
    reach it. Commits."""
    if scope is not None and not may_invite(scope, node):
        raise Refused("invite.not_yours", path=node.path)
    post = await session.scalar(select(Post).where(Post.node_id == node.id, Post.role == role))
    if post is None:
        raise Refused("invite.no_post", path=node.path, role=role.value)
    if post.holder_id is not None:
        raise Refused("invite.already_held", path=node.path, role=role.value)
    token = (await create_invites(session, [post.id], ttl, actor))[post.id]
    await session.commit()
    return _row(node, post, link_for(token), token)


async def invite_vacant_posts(
    session: AsyncSession,
    node: Node,
    ttl: timedelta,
    actor: int | None,
    link_for: Callable[[str], str],
    *,
    scope: Scope | None = None,
    withdraw_earlier: bool = True,
) -> list[InviteRow]:
    """One new invite for every vacant post in the node's subtree, in path order. With
    ``withdraw_earlier`` False the old links keep working until the caller has delivered
    the new ones (``models.invites.withdraw_earlier_invites``). Commits."""
    if scope is not None and not may_invite(scope, node):
        raise Refused("invite.not_yours", path=node.path)
    rows = await session.execute(
        select(Node, Post)
        .join(Post, Post.node_id == Node.id)
        .where(under(node), Post.holder_id.is_(None))
        .order_by(Node.path, Post.role)
    )
    vacant = [(subtree_node, post) for subtree_node, post in rows]
    tokens = await create_invites(
        session, [post.id for _, post in vacant], ttl, actor, withdraw_earlier=withdraw_earlier
    )
    await session.commit()
    return [
        _row(subtree_node, post, link_for(tokens[post.id]), tokens[post.id])
        for subtree_node, post in vacant
    ]


def _row(node: Node, post: Post, link: str, token: str) -> InviteRow:
    return InviteRow(
        path=node.path,
        level=node.level,
        role=post.role,
        roster_name=post.roster_name or "",
        roster_phone=post.roster_phone or "",
        link=link,
        post_id=post.id,
        token=token,
    )
