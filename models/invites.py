"""One-time invitations to a post, carried as Telegram deep links (``/start <token>``).

The token is 32 random URL-safe characters; the database keeps only its SHA-256, so a
leaked copy of the database yields no usable link. Issuing a new invite for a post
revokes the post's earlier unused ones: the latest list sent out is the valid one.
"""

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import TypeVar

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.audit import record
from models.base import as_utc, utcnow
from models.people import Invite
from models.posts import PostView, post_view

Item = TypeVar("Item")

TOKEN_BYTES = 24  # 32 characters of [A-Za-z0-9_-], inside Telegram's 64-character payload


class InviteStatus(StrEnum):
    valid = "valid"
    unknown = "unknown"
    used = "used"
    expired = "expired"
    revoked = "revoked"
    post_held = "post_held"


@dataclass(frozen=True)
class InviteLookup:
    status: InviteStatus
    invite_id: int | None = None
    post: PostView | None = None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_invites(
    session: AsyncSession,
    post_ids: list[int],
    ttl: timedelta,
    actor: int | None,
    *,
    withdraw_earlier: bool = True,
) -> dict[int, str]:
    """A new token per post, within the caller's transaction (the caller commits). The
    posts' earlier unused invites are withdrawn at once, or, with ``withdraw_earlier``
    False, by ``withdraw_earlier_invites`` once the new ones have reached whoever hands
    them out."""
    now = utcnow()
    tokens = {post_id: secrets.token_urlsafe(TOKEN_BYTES) for post_id in post_ids}
    if withdraw_earlier:
        await _withdraw(session, post_ids)
    session.add_all(
        Invite(
            post_id=post_id, token_hash=hash_token(token), created_by=actor, expires_at=now + ttl
        )
        for post_id, token in tokens.items()
    )
    record(session, "invite.created", actor, post_ids=post_ids[:50], count=len(post_ids))
    return tokens


async def withdraw_earlier_invites(
    session: AsyncSession, tokens: dict[int, str], actor: int | None
) -> None:
    """The new ``tokens`` (post id → token) were delivered: the posts' older unused
    invites stop working. Commits."""
    newest = {hash_token(token) for token in tokens.values()}
    await _withdraw(session, list(tokens), keep=newest)
    record(session, "invite.revoked", actor, post_ids=list(tokens)[:50], count=len(tokens))
    await session.commit()


async def withdraw_tokens(session: AsyncSession, tokens: dict[int, str]) -> None:
    """New invites that never reached anyone are withdrawn; the older ones keep working.
    Commits."""
    hashes = [hash_token(token) for token in tokens.values()]
    for chunk in _chunks(hashes, 500):
        await session.execute(
            update(Invite).where(Invite.token_hash.in_(chunk)).values(revoked_at=utcnow())
        )
    await session.commit()


async def _withdraw(
    session: AsyncSession,
    post_ids: list[int],
    keep: set[str] | None = None,
) -> None:
    for chunk in _chunks(post_ids, 500):
        statement = update(Invite).where(
            Invite.post_id.in_(chunk), Invite.used_at.is_(None), Invite.revoked_at.is_(None)
        )
        if keep:
            statement = statement.where(Invite.token_hash.not_in(keep))
        await session.execute(
            statement.values(revoked_at=utcnow()), execution_options={"synchronize_session": False}
        )


def _chunks(items: Sequence[Item], size: int) -> list[list[Item]]:
    return [list(items[start : start + size]) for start in range(0, len(items), size)]


async def lookup_invite(session: AsyncSession, token: str) -> InviteLookup:
    if not token or len(token) > 64:
        return InviteLookup(InviteStatus.unknown)
    invite = await session.scalar(select(Invite).where(Invite.token_hash == hash_token(token)))
    return await _judge(session, invite)


async def check_invite(session: AsyncSession, invite_id: int) -> InviteLookup:
    """The invite's status now: a conversation keeps the id, never the token."""
    return await _judge(session, await session.get(Invite, invite_id))


async def _judge(session: AsyncSession, invite: Invite | None) -> InviteLookup:
    if invite is None:
        return InviteLookup(InviteStatus.unknown)
    post = await post_view(session, invite.post_id)
    if invite.revoked_at is not None:
        status = InviteStatus.revoked
    elif invite.used_at is not None:
        status = InviteStatus.used
    elif as_utc(invite.expires_at) < utcnow():
        status = InviteStatus.expired
    elif post is None or post.holder_id is not None:
        status = InviteStatus.post_held
    else:
        status = InviteStatus.valid
    return InviteLookup(status, invite.id, post)


async def revoke_invites(session: AsyncSession, post_id: int, actor: int | None) -> int:
    result = await session.execute(
        update(Invite)
        .where(Invite.post_id == post_id, Invite.used_at.is_(None), Invite.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    record(session, "invite.revoked", actor, post_id=post_id)
    return int(getattr(result, "rowcount", 0) or 0)


async def mark_used(session: AsyncSession, invite_id: int, member_id: int) -> bool:
    """Marks the invite used, only if it is still unused and not revoked: False when another
    confirmation got there first (the database decides, so this holds on SQLite too)."""
    result = await session.execute(
        update(Invite)
        .where(Invite.id == invite_id, Invite.used_at.is_(None), Invite.revoked_at.is_(None))
        .values(used_at=utcnow(), used_by=member_id),
        execution_options={"synchronize_session": False},
    )
    if not getattr(result, "rowcount", 0):
        return False
    record(session, "invite.used", None, invite_id=invite_id, member_id=member_id)
    return True
