"""The command centre's direct changes to posts: revoke a holder, assign a member."""

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from models.invites import revoke_invites
from models.notify import post_ref, tell
from models.org import Member, Node, Role
from models.posts import PostView, Recipient, bind, post_at, post_view, release
from models.refusals import Refused


@dataclass(frozen=True)
class Change:
    post: PostView
    former_holder: Member | None


async def revoke_post(session: AsyncSession, node: Node, role: Role, actor: int) -> Change:
    """Frees the post and withdraws its unused invites. Commits."""
    post = await post_at(session, node.id, role)
    if post is None:
        raise Refused("invite.no_post", path=node.path, role=role.value)
    former = await session.get(Member, post.holder_id) if post.holder_id else None
    view = await post_view(session, post.id)
    assert view is not None  # the post was just read
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
