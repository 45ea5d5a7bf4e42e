"""Volunteers claiming vacant posts (认领岗位).

A volunteer in a bound group taps a vacant post of the group's subtree; the tap issues a
claim link for that volunteer alone (an unguessable token, kept only as its hash, that
expires), and the private conversation that follows (own phone, confirm) redeems it and
opens a claim. One open claim per post at a time (the database refuses a second), and at
most ``[claims] max_open_per_member`` per volunteer. The lead one level up decides:
holders of the parent node's posts, or the next ancestor's when those are vacant, or the
command centre above the zones. Approval binds the post; a claim nobody decides expires
after ``[claims] expire_after_hours`` and its volunteer is told.

Here: opening a claim, its deciders, the decision, withdrawal and expiry. The vacant posts
a group lists are ``models.vacancies``; whether a post may be claimed, and the claim link,
``models.claim_links``.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from models.access import Scope
from models.audit import record
from models.base import as_utc, utcnow
from models.claim_links import (
    CLAIM_LINK_KEPT,
    Claimable,
    ClaimCheck,
    ancestor_ids,
    check_claimable,
    judge_link,
)
from models.invites import revoke_invites
from models.messages import Action, ActionKind
from models.notify import command_centre, post_ref, tell
from models.org import Member, Node, Post, subtree
from models.people import Claim, ClaimKind, ClaimStatus, ClaimToken
from models.phones import normalize_contact_phone
from models.posts import PostView, Recipient, bind, post_view
from models.registration import get_or_create_member


async def open_claim(
    session: AsyncSession,
    token_id: int,
    telegram_id: int,
    name: str,
    phone: str,
    locale: str | None,
    username: str | None = None,
    command_centre_ids: Sequence[int] = (),
    *,
    max_open_per_member: int = 1,
    now: datetime | None = None,
) -> ClaimCheck:
    """Redeem the volunteer's claim link: open the claim if the post is still claimable
    from the group it was tapped in, and put it to its deciders in the same transaction.
    Commits."""
    moment = now or utcnow()
    link = await session.get(ClaimToken, token_id, populate_existing=True)
    if link is None:
        return ClaimCheck(Claimable.link_invalid)
    post_id = link.post_id
    # Locking the post serialises two volunteers confirming at once on PostgreSQL, and the
    # member's row one volunteer's claims on two posts; on SQLite, where FOR UPDATE does
    # nothing, the unique index on a post's open claim refuses the second insert.
    await session.get(Post, post_id, with_for_update=True)
    await session.scalar(
        select(Member.id).where(Member.telegram_id == telegram_id).with_for_update()
    )
    check = await judge_link(session, link, telegram_id, moment, max_open_per_member)
    if check.claimable is not Claimable.yes or check.post is None:
        return check
    used = await session.execute(
        update(ClaimToken)
        .where(ClaimToken.id == token_id, ClaimToken.used_at.is_(None))
        .values(used_at=moment),
        execution_options={"synchronize_session": False},
    )
    if getattr(used, "rowcount", 0) != 1:
        await session.rollback()
        return ClaimCheck(Claimable.link_used, check.post)
    normalized = normalize_contact_phone(phone) or phone
    member = await get_or_create_member(session, telegram_id, name, normalized, locale, username)
    claim = Claim(post_id=post_id, member_id=member.id, kind=ClaimKind.volunteer, phone=normalized)
    session.add(claim)
    try:
        await session.flush()
    except IntegrityError:
        # Another volunteer's claim on the post was committed since the check.
        await session.rollback()
        return await _refused_after_conflict(session, post_id, telegram_id)
    record(
        session, "claim.opened", telegram_id, claim_id=claim.id, post_id=post_id, kind="volunteer"
    )
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


async def _refused_after_conflict(
    session: AsyncSession, post_id: int, telegram_id: int
) -> ClaimCheck:
    check = await check_claimable(session, post_id, telegram_id)
    if check.claimable is Claimable.yes:
        # The claim that won was withdrawn or decided in the meantime: still, this one lost.
        return ClaimCheck(Claimable.pending, check.post)
    return check


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
    for ancestor_id in ancestor_ids(node)[1:]:
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
    opened_at: datetime | None = None
    # Whom the county's roster names for the post: a phone mismatch's reviewer compares.
    roster_name: str | None = None
    roster_phone: str | None = None


async def claim_view(session: AsyncSession, claim_id: int) -> ClaimView | None:
    row = (
        await session.execute(
            select(Claim, Member, Post.roster_name, Post.roster_phone)
            .join(Member, Member.id == Claim.member_id)
            .join(Post, Post.id == Claim.post_id)
            .where(Claim.id == claim_id)
        )
    ).first()
    if row is None:
        return None
    claim, member, roster_name, roster_phone = row
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
        as_utc(claim.created_at),
        roster_name,
        roster_phone,
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


async def expire_claims(
    session: AsyncSession, now: datetime | None = None, *, after: timedelta = timedelta(hours=72)
) -> list[int]:
    """Closes every volunteer's claim left open more than ``after`` (nobody decided it: the
    deciders were away, or their messages never arrived), tells each volunteer in the same
    transaction, and forgets claim links long expired. Commits. Returns the claims' ids."""
    moment = now or utcnow()
    due = list(
        await session.scalars(
            select(Claim.id)
            .where(
                Claim.status == ClaimStatus.open,
                Claim.kind == ClaimKind.volunteer,
                Claim.created_at <= moment - after,
            )
            .order_by(Claim.id)
        )
    )
    expired: list[int] = []
    for claim_id in due:
        # Conditional, so that a decision committed meanwhile stands.
        result = await session.execute(
            update(Claim)
            .where(Claim.id == claim_id, Claim.status == ClaimStatus.open)
            .values(status=ClaimStatus.expired, decided_at=moment),
            execution_options={"synchronize_session": False},
        )
        if not getattr(result, "rowcount", 0):
            continue
        view = await claim_view(session, claim_id)
        if view is None:
            continue
        record(session, "claim.expired", None, claim_id=claim_id, post_id=view.post.post_id)
        await tell(
            session,
            [view.volunteer],
            "claims.expired",
            {"post": post_ref(view.post), "hours": int(after.total_seconds() // 3600)},
            dedupe=f"claim:{claim_id}:expired",
        )
        expired.append(claim_id)
    await session.execute(
        delete(ClaimToken).where(ClaimToken.expires_at <= moment - CLAIM_LINK_KEPT)
    )
    await session.commit()
    return expired


@dataclass(frozen=True)
class OpenClaims:
    claims: list[ClaimView]
    total: int


async def open_claims_for(
    session: AsyncSession, scope: Scope, telegram_id: int, limit: int = 20
) -> OpenClaims:
    """The open claims the member decides, oldest first: volunteers' claims on posts
    strictly below a post the member holds (never their own); every open claim for the
    command centre, phone mismatches included."""
    if scope.is_admin:
        where: ColumnElement[bool] = true()
    elif scope.roots:
        where = and_(
            Claim.kind == ClaimKind.volunteer,
            Member.telegram_id != telegram_id,
            or_(
                *(
                    and_(subtree(root_id, level), Node.id != root_id)
                    for root_id, level in sorted(scope.roots)
                )
            ),
        )
    else:
        return OpenClaims([], 0)
    query = (
        select(Claim.id)
        .join(Post, Post.id == Claim.post_id)
        .join(Node, Node.id == Post.node_id)
        .join(Member, Member.id == Claim.member_id)
        .where(Claim.status == ClaimStatus.open, where)
    )
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    ids = await session.scalars(query.order_by(Claim.created_at, Claim.id).limit(limit))
    views = [view for claim_id in ids if (view := await claim_view(session, claim_id))]
    return OpenClaims(views, int(total or 0))
