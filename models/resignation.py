from sqlalchemy.ext.asyncio import AsyncSession

from models.org import Post
from models.posts import PostView, post_view, release


async def leave_post(
    session: AsyncSession, post_id: int, member_id: int, actor: int
) -> PostView | None:
    """The member gives the post up; None when the member does not hold it. Commits."""
    post = await session.get(Post, post_id, with_for_update=True)
    if post is None or post.holder_id != member_id:
        return None
    view = await post_view(session, post_id)
    await release(session, post, actor, how="left")
    await session.commit()
    return view
