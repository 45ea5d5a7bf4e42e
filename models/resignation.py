"""A member gives up a post of their own."""

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from models.notify import above_or_command_centre, post_ref, tell
from models.org import Member, Post
from models.posts import PostView, post_view, release


async def leave_post(
    session: AsyncSession,
    post_id: int,
    member_id: int,
    actor: int,
    command_centre_ids: Sequence[int] = (),
) -> PostView | None:
    """The member gives the post up, and whoever stands above is told in the same
    transaction; None when the member does not hold it. Commits."""
    post = await session.get(Post, post_id, with_for_update=True)
    if post is None or post.holder_id != member_id:
        return None
    view = await post_view(session, post_id)
    member = await session.get(Member, member_id)
    assert view is not None and member is not None  # both were just read through the post
    await release(session, post, actor, how="left")
    await tell(
        session,
        await above_or_command_centre(session, post.node_id, command_centre_ids),
        "leave.superior_told",
        {"name": member.name, "post": post_ref(view)},
    )
    await session.commit()
    return view
