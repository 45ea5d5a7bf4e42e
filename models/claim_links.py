"""Whether a volunteer may claim a post, and the claim link a tap in a bound group issues:
for that volunteer alone, an unguessable token kept only as its hash, redeemed in private
chat before it expires (``models.claims`` opens the claim with it)."""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.base import as_utc, utcnow
from models.invites import TOKEN_BYTES, hash_token
from models.org import LEVELS, Member, Node, Post, under
from models.people import Claim, ClaimKind, ClaimStatus, ClaimToken, GroupChat
from models.posts import PostView, post_view


class Claimable(StrEnum):
    yes = "yes"
    # No such post, or no bound group above it: nothing a volunteer could have picked.
    unknown = "unknown"
    held = "held"
    # Someone else's claim awaits a decision.
    pending = "pending"
    yours_pending = "yours_pending"
    # The volunteer has ``[claims] max_open_per_member`` claims awaiting decisions.
    too_many = "too_many"
    # The group the post was tapped in is not bound, or the post is not under its node.
    group_not_bound = "group_not_bound"
    not_here = "not_here"
    # The claim link: unknown, already used, expired, or issued to someone else.
    link_invalid = "link_invalid"
    link_used = "link_used"
    link_expired = "link_expired"
    link_not_yours = "link_not_yours"


@dataclass(frozen=True)
class ClaimCheck:
    claimable: Claimable
    post: PostView | None = None
    claim_id: int | None = None
    # The claim link the conversation goes on with (its id: a conversation never keeps the
    # token itself).
    token_id: int | None = None


# How long the link a tap issues may be redeemed: the volunteer goes on at once, in
# private chat.
CLAIM_LINK_TTL = timedelta(hours=1)
# Links are forgotten this long after they expire.
CLAIM_LINK_KEPT = timedelta(days=1)


def ancestor_ids(node: Node) -> list[int]:
    """The node's own id and its ancestors', nearest first."""
    ids = [getattr(node, level.ancestor_column) for level in reversed(LEVELS)]
    return [node_id for node_id in ids if node_id is not None]


async def check_claimable(
    session: AsyncSession,
    post_id: int,
    telegram_id: int,
    *,
    max_open_per_member: int | None = None,
) -> ClaimCheck:
    """Whether the volunteer may claim the post now: vacant, below a bound group, nobody's
    claim open on it, and (with ``max_open_per_member``) the volunteer's own open claims
    under the cap."""
    post = await session.get(Post, post_id)
    node = await session.get(Node, post.node_id) if post else None
    view = await post_view(session, post_id)
    if post is None or node is None or view is None:
        return ClaimCheck(Claimable.unknown)
    in_bound_group = await session.scalar(
        select(GroupChat.chat_id).where(GroupChat.node_id.in_(ancestor_ids(node))).limit(1)
    )
    if in_bound_group is None:
        return ClaimCheck(Claimable.unknown, view)
    if post.holder_id is not None:
        return ClaimCheck(Claimable.held, view)
    row = (
        await session.execute(
            select(Claim.id, Member.telegram_id)
            .join(Member, Member.id == Claim.member_id)
            .where(Claim.post_id == post_id, Claim.status == ClaimStatus.open)
            .limit(1)
        )
    ).first()
    if row is not None:
        claim_id, claimer = row
        mine = claimer == telegram_id
        return ClaimCheck(Claimable.yours_pending if mine else Claimable.pending, view, claim_id)
    if (
        max_open_per_member is not None
        and await open_claims_of(session, telegram_id) >= max_open_per_member
    ):
        return ClaimCheck(Claimable.too_many, view)
    return ClaimCheck(Claimable.yes, view)


async def open_claims_of(session: AsyncSession, telegram_id: int) -> int:
    """How many volunteer's claims of the member await a decision."""
    count = await session.scalar(
        select(func.count())
        .select_from(Claim)
        .join(Member, Member.id == Claim.member_id)
        .where(
            Member.telegram_id == telegram_id,
            Claim.status == ClaimStatus.open,
            Claim.kind == ClaimKind.volunteer,
        )
    )
    return int(count or 0)


async def _group_refusal(
    session: AsyncSession, group_chat_id: int, post_id: int
) -> Claimable | None:
    """Why the post cannot be claimed from the group (not bound, or the post not in the
    subtree of its node), or None: one equality on the ancestor columns of the post's node."""
    group_node = await session.scalar(
        select(Node)
        .join(GroupChat, GroupChat.node_id == Node.id)
        .where(GroupChat.chat_id == group_chat_id)
    )
    if group_node is None:
        return Claimable.group_not_bound
    inside = await session.scalar(
        select(Post.id)
        .join(Node, Node.id == Post.node_id)
        .where(Post.id == post_id, under(group_node))
    )
    return None if inside is not None else Claimable.not_here


@dataclass(frozen=True)
class ClaimOffer:
    check: ClaimCheck
    # The claim link's token, for a deep link into the private chat; None when refused.
    token: str | None = None


async def offer_claim(
    session: AsyncSession,
    group_chat_id: int,
    post_id: int,
    telegram_id: int,
    *,
    max_open_per_member: int,
    now: datetime | None = None,
) -> ClaimOffer:
    """The volunteer tapped the post in the group: when it lies in the group's subtree and
    the volunteer may claim it, a claim link for them alone, valid ``CLAIM_LINK_TTL``.
    Commits."""
    refusal = await _group_refusal(session, group_chat_id, post_id)
    if refusal is not None:
        return ClaimOffer(ClaimCheck(refusal, await post_view(session, post_id)))
    check = await check_claimable(
        session, post_id, telegram_id, max_open_per_member=max_open_per_member
    )
    if check.claimable is not Claimable.yes:
        return ClaimOffer(check)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    link = ClaimToken(
        token_hash=hash_token(token),
        post_id=post_id,
        group_chat_id=group_chat_id,
        telegram_id=telegram_id,
        expires_at=(now or utcnow()) + CLAIM_LINK_TTL,
    )
    session.add(link)
    await session.flush()
    await session.commit()
    return ClaimOffer(ClaimCheck(Claimable.yes, check.post, token_id=link.id), token)


async def judge_link(
    session: AsyncSession,
    link: ClaimToken | None,
    telegram_id: int,
    now: datetime,
    max_open_per_member: int,
) -> ClaimCheck:
    if link is None:
        return ClaimCheck(Claimable.link_invalid)
    view = await post_view(session, link.post_id)
    if link.telegram_id != telegram_id:
        return ClaimCheck(Claimable.link_not_yours, view)
    if link.used_at is not None:
        return ClaimCheck(Claimable.link_used, view)
    if as_utc(link.expires_at) <= now:
        return ClaimCheck(Claimable.link_expired, view)
    refusal = await _group_refusal(session, link.group_chat_id, link.post_id)
    if refusal is not None:
        return ClaimCheck(refusal, view)
    check = await check_claimable(
        session, link.post_id, telegram_id, max_open_per_member=max_open_per_member
    )
    if check.claimable is not Claimable.yes:
        return check
    return ClaimCheck(Claimable.yes, check.post, token_id=link.id)


async def redeem_claim_link(
    session: AsyncSession,
    token: str,
    telegram_id: int,
    *,
    max_open_per_member: int,
    now: datetime | None = None,
) -> ClaimCheck:
    """The claim link of a deep link, for the user who opened it: claimable only by the one
    it was issued to, before it expires, while the post is still claimable from the group.
    The link stays usable until the claim is opened."""
    if not token or len(token) > 64:
        return ClaimCheck(Claimable.link_invalid)
    link = await session.scalar(
        select(ClaimToken)
        .where(ClaimToken.token_hash == hash_token(token))
        .execution_options(populate_existing=True)
    )
    return await judge_link(session, link, telegram_id, now or utcnow(), max_open_per_member)


async def check_claim_link(
    session: AsyncSession,
    token_id: int,
    telegram_id: int,
    *,
    max_open_per_member: int,
    now: datetime | None = None,
) -> ClaimCheck:
    """The same check as ``redeem_claim_link``, by the link's id (a conversation keeps it)."""
    link = await session.get(ClaimToken, token_id, populate_existing=True)
    return await judge_link(session, link, telegram_id, now or utcnow(), max_open_per_member)
