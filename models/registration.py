"""Registration by invite: the person shares their own phone, confirms, and holds the post.

When the county's roster names another phone for the post, the binding waits for an
admin's decision instead (a ``phone_mismatch`` claim).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from models.audit import record
from models.invites import InviteStatus, check_invite, mark_used
from models.members import member_by_telegram_id
from models.messages import Action, ActionKind
from models.notify import above_or_command_centre, command_centre, post_ref, tell
from models.org import Member, Post
from models.people import Claim, ClaimKind
from models.phones import normalize_contact_phone
from models.posts import PostView, bind


class RegistrationResult(StrEnum):
    bound = "bound"
    held_for_admin = "held_for_admin"
    invite_invalid = "invite_invalid"


@dataclass(frozen=True)
class RegistrationOutcome:
    result: RegistrationResult
    post: PostView | None
    invite_status: InviteStatus
    claim_id: int | None = None


async def get_or_create_member(
    session: AsyncSession,
    telegram_id: int,
    name: str,
    phone: str | None,
    locale: str | None,
    username: str | None = None,
) -> Member:
    username = username.lower() if username else None
    member = await member_by_telegram_id(session, telegram_id)
    if member is None:
        member = Member(
            telegram_id=telegram_id, name=name, phone=phone, locale=locale, username=username
        )
        session.add(member)
        await session.flush()
    else:
        member.name = name or member.name
        member.username = username or member.username
        member.locale = member.locale or locale
        member.phone = phone or member.phone
        member.reachable = True
        member.unreachable_reason = None
    return member


async def register_by_invite(
    session: AsyncSession,
    invite_id: int,
    telegram_id: int,
    name: str,
    phone: str,
    locale: str | None,
    username: str | None = None,
    command_centre_ids: Sequence[int] = (),
) -> RegistrationOutcome:
    """Check the invite again (it may have been used or revoked meanwhile) and bind, or hold
    the binding for the command centre; whoever must know is told in the same transaction.
    Commits."""
    lookup = await check_invite(session, invite_id)
    if lookup.status is not InviteStatus.valid or lookup.post is None:
        return RegistrationOutcome(RegistrationResult.invite_invalid, lookup.post, lookup.status)
    post = await session.get(Post, lookup.post.post_id, with_for_update=True)
    # Checked again under the post's lock: two people confirming one link at once.
    lookup = await check_invite(session, invite_id)
    if (
        post is None
        or lookup.status is not InviteStatus.valid
        or lookup.post is None
        or lookup.invite_id is None
    ):
        await session.rollback()
        return RegistrationOutcome(RegistrationResult.invite_invalid, lookup.post, lookup.status)
    normalized = normalize_contact_phone(phone) or phone
    member = await get_or_create_member(session, telegram_id, name, normalized, locale, username)
    if not await mark_used(session, lookup.invite_id, member.id):
        await session.rollback()
        return RegistrationOutcome(
            RegistrationResult.invite_invalid, lookup.post, InviteStatus.used
        )
    if post.roster_phone and post.roster_phone != normalized:
        claim = Claim(
            post_id=post.id,
            member_id=member.id,
            kind=ClaimKind.phone_mismatch,
            phone=normalized,
            invite_id=lookup.invite_id,
        )
        session.add(claim)
        await session.flush()
        record(session, "claim.opened", telegram_id, claim_id=claim.id, post_id=post.id)
        await tell(
            session,
            command_centre(command_centre_ids),
            "registration.phone_review",
            {
                "name": name,
                "phone": normalized,
                "post": post_ref(lookup.post),
                # Beside the sharer's: whom the roster means, so the reviewer can tell a
                # new number from a stranger holding the link.
                "roster_name": post.roster_name or "—",
                "roster_phone": post.roster_phone or "—",
            },
            actions=(
                Action(ActionKind.approve_claim, claim.id),
                Action(ActionKind.decline_claim, claim.id),
            ),
            dedupe=f"claim:{claim.id}:ask",
        )
        await session.commit()
        return RegistrationOutcome(
            RegistrationResult.held_for_admin, lookup.post, lookup.status, claim.id
        )
    await bind(session, post, member, telegram_id, how="invite")
    await tell(
        session,
        await above_or_command_centre(session, post.node_id, command_centre_ids),
        "registration.superior_told",
        {"name": name, "post": post_ref(lookup.post)},
    )
    await session.commit()
    return RegistrationOutcome(RegistrationResult.bound, lookup.post, lookup.status)
