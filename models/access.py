"""The one answer to "may this member see or do this for that node?".

A member's scope is the union of the subtrees of the posts it holds; an officer holds the
same subtree as its lead; admins (the county command centre) have everything. Every
handler and every button press asks here, with ids re-read from the database.
"""

from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.org import Level, Member, Node, Post
from models.sqlite_driver import QUICK


@dataclass(frozen=True)
class Scope:
    is_admin: bool
    # (node id, level) of each subtree root the member holds a post at.
    roots: frozenset[tuple[int, str]]

    @property
    def is_empty(self) -> bool:
        return not self.is_admin and not self.roots

    def sees(self, node: Node) -> bool:
        """The node is inside one of the member's subtrees (its own post's node included)."""
        if self.is_admin:
            return True
        return any(_ancestor_id(node, level) == root_id for root_id, level in self.roots)

    def manages(self, node: Node) -> bool:
        """The node lies strictly below a post the member holds: the member decides claims
        on it and is told of its comings and goings. Zone posts are the admins' alone."""
        if self.is_admin:
            return True
        return any(
            _ancestor_id(node, level) == root_id and node.id != root_id
            for root_id, level in self.roots
        )


def _ancestor_id(node: Node, level: str) -> int | None:
    value: int | None = getattr(node, Level(level).ancestor_column)
    return value


# Read on nearly every update: built once.
_ROOTS = (
    select(Node.id, Node.level)
    .join(Post, Post.node_id == Node.id)
    .join(Member, Member.id == Post.holder_id)
    .where(Member.telegram_id == bindparam("telegram_id"))
    .execution_options(**QUICK)
)


async def scope_of(
    session: AsyncSession, telegram_id: int, admin_ids: list[int] | tuple[int, ...]
) -> Scope:
    rows = await session.execute(_ROOTS, {"telegram_id": telegram_id})
    return Scope(
        is_admin=telegram_id in admin_ids,
        roots=frozenset((node_id, level) for node_id, level in rows),
    )
