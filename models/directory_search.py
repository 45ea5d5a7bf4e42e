"""Finding people in the roster by name or phone, and who stands above a member.

A search looks at both who holds a post (the member's name and phone) and who the
county's roster says should hold it, within the caller's scope only.
"""

import re
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from models.access import Scope
from models.directory import Holding, holdings
from models.org import Member, Node, Post, subtree
from models.phones import normalize_phone

# A phone is searched by its whole number (written any way the roster accepts) or by its
# last four digits, as people read a number back to each other.
PHONE_TAIL = re.compile(r"[0-9]{4}")


@dataclass(frozen=True)
class RosterMatch:
    node_id: int
    path: str
    level: str
    role: str
    name: str | None
    held: bool


@dataclass(frozen=True)
class RosterMatches:
    total: int
    matches: list[RosterMatch]


def in_scope(scope: Scope) -> ColumnElement[bool]:
    """``Node`` rows the scope sees."""
    if scope.is_admin:
        return true()
    return or_(*(subtree(node_id, level) for node_id, level in sorted(scope.roots)))


def _query_condition(query: str) -> ColumnElement[bool] | None:
    """What a typed name or phone matches: a phone exactly, four digits as a phone's end,
    else part of a name (either the holder's or the roster's)."""
    if PHONE_TAIL.fullmatch(query):
        return or_(Member.phone.endswith(query), Post.roster_phone.endswith(query))
    phone = normalize_phone(query)
    if phone is not None:
        return or_(Member.phone == phone, Post.roster_phone == phone)
    if any(character.isdigit() for character in query) and not any(
        character.isalpha() for character in query
    ):
        return None  # digits that make no phone match nobody rather than everybody
    needle = query.lower()
    return or_(
        func.lower(Member.name).contains(needle, autoescape=True),
        func.lower(Post.roster_name).contains(needle, autoescape=True),
    )


async def search_roster(
    session: AsyncSession, scope: Scope, query: str, limit: int
) -> RosterMatches:
    """Posts in the scope whose holder or roster entry matches ``query``, by path; at most
    ``limit`` of them with the total."""
    condition = _query_condition(query.strip())
    if condition is None:
        return RosterMatches(0, [])
    # The total rides on each row (a window count): one pass over the posts, not two.
    rows = await session.execute(
        select(
            Node.id,
            Node.path,
            Node.level,
            Post.role,
            Member.name,
            Post.roster_name,
            Post.holder_id,
            func.count().over(),
        )
        .join(Post, Post.node_id == Node.id)
        .outerjoin(Member, Member.id == Post.holder_id)
        .where(and_(in_scope(scope), condition))
        .order_by(Node.path, Post.role)
        .limit(limit)
    )
    matches, total = [], 0
    for node_id, path, level, role, holder, roster, holder_id, count in rows:
        matches.append(
            RosterMatch(node_id, path, level, role, holder or roster, holder_id is not None)
        )
        total = count
    return RosterMatches(total, matches)


@dataclass(frozen=True)
class Above:
    """Who stands above one of a member's posts: for a lead, the lead and officer of the
    parent node; for an officer, first its own node's lead, then those of the parent.
    ``parent_path`` None means the post is a zone's: above it is the command centre."""

    level: str
    role: str
    path: str
    own_lead: Holding | None
    parent_level: str | None
    parent_path: str | None
    parent: list[Holding]


async def above_member(session: AsyncSession, member_id: int) -> list[Above]:
    rows = await session.execute(
        select(Node, Post.role)
        .join(Post, Post.node_id == Node.id)
        .where(Post.holder_id == member_id)
        .order_by(Node.path, Post.role)
    )
    result = []
    for node, role in rows:
        own_lead = None
        if role == "officer":
            own_lead = next((h for h in await holdings(session, node.id) if h.role == "lead"), None)
        parent = await session.get(Node, node.parent_id) if node.parent_id else None
        result.append(
            Above(
                level=node.level,
                role=role,
                path=node.path,
                own_lead=own_lead,
                parent_level=parent.level if parent else None,
                parent_path=parent.path if parent else None,
                parent=await holdings(session, parent.id) if parent else [],
            )
        )
    return result
