"""Who stands where above a node: the people alerts and needs go to."""

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.org import Member, Node, Post
from models.posts import Recipient


def ancestors_above(node: Node) -> list[int]:
    """Ids of the building, grid and zone strictly above ``node``, nearest first."""
    above = (node.building_id, node.grid_id, node.zone_id)
    return [ancestor for ancestor in above if ancestor is not None and ancestor != node.id]


async def holders_at(
    session: AsyncSession, node_ids: Sequence[int], *, besides: int | None = None
) -> list[Recipient]:
    """Whoever holds the lead and officer posts of ``node_ids``, in that order of nodes,
    leads first, each member once; ``besides`` (a member id) left out."""
    if not node_ids:
        return []
    rows = await session.execute(
        select(Post.node_id, Post.role, Member.telegram_id, Member.id)
        .join(Member, Member.id == Post.holder_id)
        .where(Post.node_id.in_(node_ids))
    )
    order = {node_id: index for index, node_id in enumerate(node_ids)}
    found: list[Recipient] = []
    seen: set[int] = set()
    for _, _, telegram_id, member_id in sorted(
        rows, key=lambda row: (order[row.node_id], row.role != "lead")
    ):
        if member_id == besides or member_id in seen:
            continue
        seen.add(member_id)
        found.append(Recipient(telegram_id, member_id))
    return found


def private_addresses(addresses: Iterable[int]) -> list[Recipient]:
    """Command-centre addresses that are people's private chats: household answers never
    go to a group chat, even one listed among the admins by mistake."""
    return [Recipient(address) for address in dict.fromkeys(addresses) if address > 0]
