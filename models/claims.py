"""Volunteers claiming vacant posts (认领岗位).

A volunteer in a bound group picks a vacant post of the group's subtree, shares their phone
in private chat and opens a claim; one open claim per post at a time. The lead one level
up decides: holders of the parent node's posts, or the next ancestor's when those are
vacant, or the command centre above the zones. Approval binds the post.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import ColumnElement, false, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from models.access import Scope
from models.audit import record
from models.base import utcnow
from models.invites import revoke_invites
from models.messages import Action, ActionKind
from models.notify import command_centre, post_ref, tell
from models.org import LEVELS, Member, Node, Post, subtree, under
from models.people import Claim, ClaimKind, ClaimStatus, GroupChat
from models.phones import normalize_contact_phone
from models.posts import PostView, Recipient, bind, post_view
from models.registration import get_or_create_member

_POST_COLUMNS = (Post.id, Node.id, Node.level, Node.path, Post.role, Post.holder_id)


@dataclass(frozen=True)
class VacancyPage:
    posts: list[PostView]
    total: int


async def _vacancies(
    session: AsyncSession, where: ColumnElement[bool], offset: int, limit: int
) -> VacancyPage:
    vacant = (Post.holder_id.is_(None), where)
    total = await session.scalar(
        select(func.count()).select_from(Post).join(Node, Node.id == Post.node_id).where(*vacant)
    )
    rows = await session.execute(
        select(*_POST_COLUMNS)
        .join(Node, Node.id == Post.node_id)
        .where(*vacant)
        .order_by(Node.path, Post.role, Post.id)
        .offset(offset)
        .limit(limit)
    )
    return VacancyPage([PostView(*row) for row in rows], int(total or 0))


async def vacancies_under(
    session: AsyncSession, node_id: int, offset: int, limit: int
) -> VacancyPage:
    """Vacant posts of the node's subtree (the node's own included), in path order."""
    node = await session.get(Node, node_id)
    if node is None:
        return VacancyPage([], 0)
    return await _vacancies(session, under(node), offset, limit)


async def vacancies_in_scope(
    session: AsyncSession, scope: Scope, offset: int, limit: int
) -> VacancyPage:
    """Vacant posts in every subtree the member holds a post in; all of them for admins."""
    if scope.is_admin:
        where: ColumnElement[bool] = true()
    elif scope.roots:
        where = or_(*(subtree(root_id, level) for root_id, level in sorted(scope.roots)))
    else:
        where = false()
    return await _vacancies(session, where, offset, limit)


class Claimable(StrEnum):
    yes = "yes"
    # No such post, or no bound group above it: nothing a volunteer could have picked.
    unknown = "unknown"
    held = "held"
    # Someone else's claim awaits a decision.
    pending = "pending"
    yours_pending = "yours_pending"


@dataclass(frozen=True)
class ClaimCheck:
    claimable: Claimable
    post: PostView | None = None
    claim_id: int | None = None


def _ancestor_ids(node: Node) -> list[int]:
    """The node's own id and its ancestors', nearest first."""
    ids = [getattr(node, level.ancestor_column) for level in reversed(LEVELS)]
    return [node_id for node_id in ids if node_id is not None]


async def check_claimable(session: AsyncSession, post_id: int, telegram_id: int) -> ClaimCheck:
    post = await session.get(Post, post_id)
    node = await session.get(Node, post.node_id) if post else None
    view = await post_view(session, post_id)
    if post is None or node is None or view is None:
        return ClaimCheck(Claimable.unknown)
    in_bound_group = await session.scalar(
        select(GroupChat.chat_id).where(GroupChat.node_id.in_(_ancestor_ids(node))).limit(1)
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
    return ClaimCheck(Claimable.yes, view)


async def open_claim(
    session: AsyncSession,
    post_id: int,
    telegram_id: int,
    name: str,
    phone: str,
    locale: str | None,
    username: str | None = None,
    command_centre_ids: Sequence[int] = (),
) -> ClaimCheck:
    """Open the volunteer's claim if the post is still claimable, and put it to its deciders
    in the same transaction. Commits."""
    # Locking the post serialises two volunteers confirming at once (PostgreSQL; SQLite
    # has a single writer anyway).
    await session.get(Post, post_id, with_for_update=True)
    check = await check_claimable(session, post_id, telegram_id)
    if check.claimable is not Claimable.yes:
        return check
    normalized = normalize_contact_phone(phone) or phone
    member = await get_or_create_member(session, telegram_id, name, normalized, locale, username)
    claim = Claim(post_id=post_id, member_id=member.id, kind=ClaimKind.volunteer, phone=normalized)
    session.add(claim)
    await session.flush()
    record(
        session, "claim.opened", telegram_id, claim_id=claim.id, post_id=post_id, kind="volunteer"
    )
    assert check.post is not None  # a claimable post was found
    await tell(
        session,
        await deciders_of(session, post_id, telegram_id, reachable_only=True)
        or command_centre(command_centre_ids),
        "claims.decide",
        {"name": name, "phone": normalized, "post": post_ref(check.post)},
        actions=(
            Action(ActionKind.approve_claim, claim.id),
            Action(ActionKind.decline_claim, claim.id),
        ),
        dedupe=f"claim:{claim.id}:ask",
        fallback_to_command_centre=True,
    )
    await session.commit()
    return ClaimCheck(Claimable.yes, check.post, claim.id)


async def deciders_of(
    session: AsyncSession, post_id: int, claimer: int, *, reachable_only: bool = False
) -> list[Recipient]:
    """Who decides a claim on the post: the holders of the parent node's posts, or of the
    nearest ancestor's that has any (that the bot can reach, with ``reachable_only``).
    Empty for a zone post or a vacant chain above: the command centre decides then."""
    post = await session.get(Post, post_id)
    node = await session.get(Node, post.node_id) if post else None
    if node is None:
        return []
    for ancestor_id in _ancestor_ids(node)[1:]:
        rows = await session.execute(
            select(Member.telegram_id, Member.id)
            .join(Post, Post.holder_id == Member.id)
            .where(
                Post.node_id == ancestor_id,
                Member.telegram_id != claimer,
                Member.reachable.is_(True) if reachable_only else true(),
            )
            .order_by(Post.role)
        )
        recipients = [Recipient(telegram_id, member_id) for telegram_id, member_id in rows]
        if recipients:
            return recipients
    return []


@dataclass(frozen=True)
class ClaimView:
    claim_id: int
    status: str
    post: PostView
    volunteer: Recipient
    volunteer_name: str
    phone: str | None
    kind: str = ClaimKind.volunteer


async def claim_view(session: AsyncSession, claim_id: int) -> ClaimView | None:
    row = (
        await session.execute(
            select(Claim, Member)
            .join(Member, Member.id == Claim.member_id)
            .where(Claim.id == claim_id)
        )
    ).first()
    if row is None:
        return None
    claim, member = row
    post = await post_view(session, claim.post_id)
    if post is None:
        return None
    return ClaimView(
        claim.id,
        claim.status,
        post,
        Recipient(member.telegram_id, member.id),
        member.name,
        claim.phone,
        claim.kind,
    )


class Decision(StrEnum):
    approved = "approved"
    declined = "declined"
    unknown = "unknown"
    forbidden = "forbidden"
    # Decided by someone else, or withdrawn, before this press.
    not_open = "not_open"
    # Someone else came to hold the post meanwhile (by invite, say): the claim is declined.
    post_held = "post_held"


@dataclass(frozen=True)
class DecisionOutcome:
    decision: Decision
    claim: ClaimView | None = None


async def decide_claim(
    session: AsyncSession, claim_id: int, approve: bool, scope: Scope, actor: int
) -> DecisionOutcome:
    """Approve or decline a claim: a volunteer's, for a decider who manages the post's node;
    an invited person's whose phone differs from the roster's, for the command centre.
    Commits."""
    claim = await session.get(Claim, claim_id, with_for_update=True)
    if claim is None:
        return DecisionOutcome(Decision.unknown)
    post = await session.get(Post, claim.post_id, with_for_update=True)
    node = await session.get(Node, post.node_id) if post else None
    member = await session.get(Member, claim.member_id)
    if post is None or node is None or member is None:
        return DecisionOutcome(Decision.unknown)
    own_claim = member.telegram_id == actor and not scope.is_admin
    may_decide = scope.is_admin if claim.kind == ClaimKind.phone_mismatch else scope.manages(node)
    if not may_decide or own_claim:
        return DecisionOutcome(Decision.forbidden)
    if claim.status != ClaimStatus.open:
        return DecisionOutcome(Decision.not_open, await claim_view(session, claim_id))
    claim.decided_at = utcnow()
    claim.decided_by = actor
    if approve and post.holder_id is not None:
        decision = Decision.post_held
        claim.status = ClaimStatus.declined
        record(session, "claim.declined", actor, claim_id=claim.id, reason="post_held")
    elif approve:
        decision = Decision.approved
        claim.status = ClaimStatus.approved
        await bind(session, post, member, actor, how="claim")
        # An invite left open for the post must not revive it once the volunteer leaves.
        await revoke_invites(session, post.id, actor)
        record(session, "claim.approved", actor, claim_id=claim.id, post_id=post.id)
    else:
        decision = Decision.declined
        claim.status = ClaimStatus.declined
        record(session, "claim.declined", actor, claim_id=claim.id, post_id=post.id)
    view = await claim_view(session, claim_id)
    assert view is not None  # the claim, its post and its member were just read
    await tell(
        session,
        [view.volunteer],
        _volunteer_told(decision, ClaimKind(claim.kind)),
        {"post": post_ref(view.post)},
        dedupe=f"claim:{claim.id}:decided",
    )
    await session.commit()
    return DecisionOutcome(decision, view)


def _volunteer_told(decision: Decision, kind: ClaimKind) -> str:
    if decision is Decision.post_held:
        return "claims.post_taken"
    if kind is ClaimKind.phone_mismatch:
        return "registration.approved" if decision is Decision.approved else "registration.declined"
    return "claims.approved" if decision is Decision.approved else "claims.declined"


class Withdrawal(StrEnum):
    withdrawn = "withdrawn"
    not_yours = "not_yours"
    not_open = "not_open"


async def withdraw_claim(
    session: AsyncSession, claim_id: int, telegram_id: int
) -> tuple[Withdrawal, ClaimView | None]:
    """The volunteer takes an open claim back. Commits."""
    claim = await session.get(Claim, claim_id, with_for_update=True)
    member = await session.get(Member, claim.member_id) if claim else None
    if claim is None or member is None or member.telegram_id != telegram_id:
        return Withdrawal.not_yours, None
    if claim.status != ClaimStatus.open:
        return Withdrawal.not_open, await claim_view(session, claim_id)
    claim.status = ClaimStatus.withdrawn
    claim.decided_at = utcnow()
    claim.decided_by = telegram_id
    record(session, "claim.withdrawn", telegram_id, claim_id=claim.id, post_id=claim.post_id)
    await session.commit()
    return Withdrawal.withdrawn, await claim_view(session, claim_id)
