"""The command centre's direct changes to posts: revoke a holder, assign a member."""

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.invites import revoke_invites
from models.notify import post_ref, tell
from models.org import Member, Node, Post, Role
from models.posts import PostView, Recipient, bind, post_at, post_view, release
from models.refusals import Refused


@dataclass(frozen=True)
class Change:
    post: PostView
    former_holder: Member | None


# ``revoke_post`` without a holder to expect: whoever holds the post is relieved.
ANY_HOLDER = -1


async def revoke_preview(session: AsyncSession, node: Node, role: Role) -> Change:
    """What ``revoke_post`` would do, changing nothing: the post and who holds it now."""
    post = await post_at(session, node.id, role)
    if post is None:
        raise Refused("invite.no_post", path=node.path, role=role.value)
    view = await post_view(session, post.id)
    assert view is not None  # the post was just read
    former = await session.get(Member, post.holder_id) if post.holder_id else None
    return Change(view, former)


async def revoke_post(
    session: AsyncSession,
    node: Node,
    role: Role,
    actor: int,
    *,
    expected_holder_id: int | None = ANY_HOLDER,
) -> Change:
    """Frees the post and withdraws its unused invites. With ``expected_holder_id`` (None:
    vacant), a post whose holder is no longer the one the actor was shown is left alone
    (``Refused("revoke.stale")``). Commits."""
    post = await session.scalar(
        select(Post).where(Post.node_id == node.id, Post.role == role).with_for_update()
    )
    if post is None:
        raise Refused("invite.no_post", path=node.path, role=role.value)
    view = await post_view(session, post.id)
    assert view is not None  # the post was just read
    if expected_holder_id != ANY_HOLDER and post.holder_id != expected_holder_id:
        await session.rollback()
        raise Refused("revoke.stale", post=post_ref(view))
    former = await session.get(Member, post.holder_id) if post.holder_id else None
    if former is not None:
        await release(session, post, actor, how="revoked")
        await tell(
            session,
            [Recipient(former.telegram_id, former.id)],
            "revoke.holder_told",
            {"post": post_ref(view)},
        )
    await revoke_invites(session, post.id, actor)
    await session.commit()
    return Change(view, former)


async def revoke_post_by_id(
    session: AsyncSession, post_id: int, actor: int, expected_holder_id: int | None
) -> Change:
    """``revoke_post`` for a post named by its id (a confirmation button). Commits."""
    post = await session.get(Post, post_id)
    node = await session.get(Node, post.node_id) if post is not None else None
    if post is None or node is None:
        raise Refused("revoke.unknown_post")
    return await revoke_post(
        session, node, Role(post.role), actor, expected_holder_id=expected_holder_id
    )


async def assign_post(
    session: AsyncSession, node: Node, role: Role, member: Member, actor: int
) -> Change:
    """Binds the member directly, without an invite. Commits."""
    post = await post_at(session, node.id, role)
    if post is None:
        raise Refused("invite.no_post", path=node.path, role=role.value)
    if post.holder_id is not None and post.holder_id != member.id:
        raise Refused("invite.already_held", path=node.path, role=role.value)
    view = await post_view(session, post.id)
    assert view is not None  # the post was just read
    await bind(session, post, member, actor, how="assigned")
    await revoke_invites(session, post.id, actor)
    await tell(
        session,
        [Recipient(member.telegram_id, member.id)],
        "assign.member_told",
        {"post": post_ref(view)},
    )
    await session.commit()
    return Change(view, None)
