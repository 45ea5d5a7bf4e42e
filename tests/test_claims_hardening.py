"""Claims that keep their promises under races and abuse, in the domain: a claim opens only
through a link its volunteer got by tapping the post in a bound group; one open claim per
post, refused by the database itself; a cap per volunteer; undecided claims expire and
their volunteers are told; a decider's list of open claims."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import models.claim_links
from models.access import Scope, scope_of
from models.base import utcnow
from models.claim_links import (
    CLAIM_LINK_TTL,
    Claimable,
    ClaimCheck,
    check_claim_link,
    offer_claim,
    redeem_claim_link,
)
from models.claims import (
    Decision,
    Withdrawal,
    decide_claim,
    expire_claims,
    open_claim,
    open_claims_for,
    withdraw_claim,
)
from models.groups import BindResult, bind_group, unbind_group
from models.org import Post
from models.outbox.table import OutboxMessage
from models.people import Claim, ClaimKind, ClaimStatus, ClaimToken
from models.registration import get_or_create_member
from models.system import AuditEntry
from tests.fixtures import (
    BUILDING,
    GRID,
    OTHER_ZONE,
    UNIT,
    hold_post,
    import_example_county,
    node_at,
    post_id,
)

ADMINS = (900_001,)
GROUP = -5001
LIU, CHEN, STRANGER = 5001, 5002, 6666
UNIT_2 = "县卫健局片区/阳光小区/1号楼/2单元"
OTHER_UNIT = "县卫健局片区/阳光小区/2号楼/1单元"


async def scope(session: AsyncSession, telegram_id: int) -> Scope:
    return await scope_of(session, telegram_id, ADMINS)


async def compound(session: AsyncSession, path: str = GRID) -> None:
    """The example county; 阳光小区's group bound; 1号楼's lead (3002) and officer (3003)."""
    await import_example_county(session)
    admin = await scope(session, ADMINS[0])
    target = await node_at(session, path)
    outcome = await bind_group(session, GROUP, "阳光小区志愿者", target.id, admin, ADMINS[0])
    assert outcome.result is BindResult.bound
    await hold_post(session, 3002, BUILDING)
    await hold_post(session, 3003, BUILDING, "officer")


async def tap(
    session: AsyncSession,
    path: str,
    telegram_id: int,
    *,
    chat_id: int = GROUP,
    max_open: int = 1,
) -> int:
    """The volunteer taps the post in the group; the id of the claim link it issues."""
    offer = await offer_claim(
        session,
        chat_id,
        await post_id(session, path),
        telegram_id,
        max_open_per_member=max_open,
    )
    assert offer.check.claimable is Claimable.yes, offer.check
    assert offer.token is not None and offer.check.token_id is not None
    return offer.check.token_id


async def claim(
    session: AsyncSession, token_id: int, telegram_id: int, max_open: int = 1
) -> ClaimCheck:
    return await open_claim(
        session,
        token_id,
        telegram_id,
        f"volunteer {telegram_id}",
        "+8613909719999",
        "zh_Hans",
        command_centre_ids=ADMINS,
        max_open_per_member=max_open,
    )


async def open_claims_on(session: AsyncSession, path: str) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(Claim)
        .where(Claim.post_id == await post_id(session, path), Claim.status == ClaimStatus.open)
    )
    return int(count or 0)


async def told(session: AsyncSession, chat_id: int, key: str) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.chat_id == chat_id, OutboxMessage.source == key)
    )
    return int(count or 0)


# --- claim links (#2) ------------------------------------------------------------------------


async def test_a_claim_opens_only_through_a_link_issued_by_a_tap_to_that_volunteer(
    session: AsyncSession,
) -> None:
    await compound(session)
    unit_lead = await post_id(session, UNIT)
    # What a tap in the group issues: a token, kept only as its hash.
    offer = await offer_claim(session, GROUP, unit_lead, LIU, max_open_per_member=1)
    assert offer.check.claimable is Claimable.yes and offer.token is not None
    assert len(offer.token) >= 32
    stored = await session.scalar(select(ClaimToken))
    assert stored is not None and offer.token not in stored.token_hash
    assert (stored.post_id, stored.group_chat_id, stored.telegram_id) == (unit_lead, GROUP, LIU)

    # An outsider guessing post ids, or someone else with Liu's link, gets nothing.
    for guess in (str(unit_lead), f"{unit_lead:032d}", "", "x" * 65):
        refused = await redeem_claim_link(session, guess, STRANGER, max_open_per_member=1)
        assert refused.claimable is Claimable.link_invalid and refused.token_id is None
    someone_else = await redeem_claim_link(session, offer.token, CHEN, max_open_per_member=1)
    assert someone_else.claimable is Claimable.link_not_yours
    assert (await claim(session, stored.id, CHEN)).claimable is Claimable.link_not_yours
    assert (await claim(session, 10**9, CHEN)).claimable is Claimable.link_invalid

    mine = await redeem_claim_link(session, offer.token, LIU, max_open_per_member=1)
    assert mine.claimable is Claimable.yes and mine.token_id == stored.id
    assert mine.post is not None and mine.post.path == UNIT
    opened = await claim(session, stored.id, LIU)
    assert opened.claimable is Claimable.yes and opened.claim_id is not None
    # Used once: neither the link nor its id opens anything again.
    again = await redeem_claim_link(session, offer.token, LIU, max_open_per_member=1)
    assert again.claimable is Claimable.link_used
    assert (await claim(session, stored.id, LIU)).claimable is Claimable.link_used
    assert await open_claims_on(session, UNIT) == 1


async def test_a_claim_link_expires(session: AsyncSession) -> None:
    await compound(session)
    token_id = await tap(session, UNIT, LIU)
    later = utcnow() + CLAIM_LINK_TTL + timedelta(seconds=1)
    late = await check_claim_link(session, token_id, LIU, max_open_per_member=1, now=later)
    assert late.claimable is Claimable.link_expired
    expired = await open_claim(session, token_id, LIU, "刘志愿", "+8613909719999", None, now=later)
    assert expired.claimable is Claimable.link_expired
    assert await open_claims_on(session, UNIT) == 0
    # Expired links are forgotten by the sweep a day later.
    await expire_claims(session, later + timedelta(days=2))
    assert await session.get(ClaimToken, token_id) is None


async def test_the_group_subtree_is_checked_in_the_domain(session: AsyncSession) -> None:
    await compound(session, BUILDING)  # the group is bound to 1号楼 only
    inside = await offer_claim(
        session, GROUP, await post_id(session, UNIT), LIU, max_open_per_member=1
    )
    assert inside.check.claimable is Claimable.yes
    # 2号楼 is in the same compound, but not under the group's node: a path prefix such as
    # "…/1号楼" would not tell "…/1号楼1" apart either; the ancestor columns do.
    elsewhere = await offer_claim(
        session,
        GROUP,
        await post_id(session, OTHER_UNIT),
        LIU,
        max_open_per_member=1,
    )
    assert elsewhere.check.claimable is Claimable.not_here and elsewhere.token is None
    other_zone = await offer_claim(
        session, GROUP, await post_id(session, OTHER_ZONE), LIU, max_open_per_member=1
    )
    assert other_zone.check.claimable is Claimable.not_here
    unbound = await offer_claim(
        session, -777, await post_id(session, UNIT), LIU, max_open_per_member=1
    )
    assert unbound.check.claimable is Claimable.group_not_bound

    # Unbound after the tap: the link no longer opens a claim.
    token_id = inside.check.token_id
    assert token_id is not None
    await unbind_group(session, GROUP, await scope(session, ADMINS[0]), ADMINS[0])
    assert (await claim(session, token_id, LIU)).claimable is Claimable.group_not_bound
    assert await open_claims_on(session, UNIT) == 0


async def test_a_volunteer_holds_at_most_max_open_claims(session: AsyncSession) -> None:
    await compound(session)
    first = await tap(session, UNIT, LIU)
    # Both taps come before the first claim opens: the cap holds at opening too.
    second = await tap(session, UNIT_2, LIU)
    assert (await claim(session, first, LIU)).claimable is Claimable.yes
    refused = await claim(session, second, LIU)
    assert refused.claimable is Claimable.too_many
    assert await open_claims_on(session, UNIT_2) == 0
    # And a third tap is refused at once.
    third = await offer_claim(
        session, GROUP, await post_id(session, OTHER_UNIT), LIU, max_open_per_member=1
    )
    assert third.check.claimable is Claimable.too_many and third.token is None

    # With the cap at two, the second claim opens.
    second = await tap(session, UNIT_2, LIU, max_open=2)
    assert (await claim(session, second, LIU, max_open=2)).claimable is Claimable.yes
    assert await open_claims_on(session, UNIT_2) == 1


# --- one open claim per post (#9) --------------------------------------------------------


async def test_the_database_refuses_a_second_open_claim_on_a_post(session: AsyncSession) -> None:
    await compound(session)
    unit_lead = await post_id(session, UNIT)
    liu = (await get_or_create_member(session, LIU, "刘志愿", None, None)).id
    chen = (await get_or_create_member(session, CHEN, "陈志愿", None, None)).id
    session.add(Claim(post_id=unit_lead, member_id=liu, kind=ClaimKind.volunteer))
    await session.commit()
    session.add(Claim(post_id=unit_lead, member_id=chen, kind=ClaimKind.volunteer))
    with pytest.raises(IntegrityError):
        await session.commit()
    await session.rollback()
    # Closed claims do not count, and an invited person's held registration is not a
    # volunteer's claim.
    session.add(
        Claim(
            post_id=unit_lead,
            member_id=chen,
            kind=ClaimKind.volunteer,
            status=ClaimStatus.declined,
        )
    )
    session.add(Claim(post_id=unit_lead, member_id=chen, kind=ClaimKind.phone_mismatch))
    await session.commit()


async def test_two_volunteers_confirming_at_once_leave_one_open_claim(
    session: AsyncSession,
    session_factory: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Chen's check ran before Liu's claim was committed (SQLite does not serialise them):
    the insert is refused by the database and Chen is told the post is pending."""
    await compound(session)
    liu_link = await tap(session, UNIT, LIU)
    chen_link = await tap(session, UNIT, CHEN)
    async with session_factory() as other:
        assert (await claim(other, liu_link, LIU)).claimable is Claimable.yes

    real_check = models.claim_links.check_claimable
    stale: list[bool] = []

    async def check_before_liu_committed(
        session: AsyncSession, post_id: int, telegram_id: int, **kwargs: int | None
    ) -> ClaimCheck:
        found = await real_check(session, post_id, telegram_id, **kwargs)
        if not stale:  # the first check saw no open claim yet
            stale.append(True)
            return ClaimCheck(Claimable.yes, found.post)
        return found

    monkeypatch.setattr(models.claim_links, "check_claimable", check_before_liu_committed)
    outcome = await claim(session, chen_link, CHEN)
    assert stale and outcome.claimable is Claimable.pending
    assert await open_claims_on(session, UNIT) == 1
    # Nobody was asked about a claim that does not exist, and nothing was half written.
    assert await told(session, 3002, "claims.decide") == 1
    link = await session.get(ClaimToken, chen_link)
    assert link is not None and link.used_at is None


# --- expiry ------------------------------------------------------------------------------


async def test_undecided_claims_expire_and_their_volunteers_are_told(
    session: AsyncSession,
) -> None:
    await compound(session)
    opened = await claim(session, await tap(session, UNIT, LIU), LIU)
    assert opened.claim_id is not None
    now = utcnow()
    assert await expire_claims(session, now + timedelta(hours=71), after=timedelta(hours=72)) == []
    expired = await expire_claims(session, now + timedelta(hours=73), after=timedelta(hours=72))
    assert expired == [opened.claim_id]
    stored = await session.get(Claim, opened.claim_id)
    assert stored is not None
    await session.refresh(stored)
    assert stored.status == ClaimStatus.expired and stored.decided_at is not None
    assert await told(session, LIU, "claims.expired") == 1
    audit = list(await session.scalars(select(AuditEntry.action)))
    assert audit.count("claim.expired") == 1

    # Once only; a late decision or withdrawal finds it closed; the post is free again.
    assert await expire_claims(session, now + timedelta(hours=80), after=timedelta(hours=72)) == []
    assert await told(session, LIU, "claims.expired") == 1
    late = await decide_claim(session, opened.claim_id, True, await scope(session, 3002), 3002)
    assert late.decision is Decision.not_open and late.claim is not None
    assert late.claim.status == ClaimStatus.expired
    assert (await withdraw_claim(session, opened.claim_id, LIU))[0] is Withdrawal.not_open
    post = await session.get(Post, await post_id(session, UNIT))
    assert post is not None and post.holder_id is None
    assert (await claim(session, await tap(session, UNIT, CHEN), CHEN)).claimable is Claimable.yes


async def test_a_decision_taken_first_stands_against_expiry(session: AsyncSession) -> None:
    await compound(session)
    opened = await claim(session, await tap(session, UNIT, LIU), LIU)
    assert opened.claim_id is not None
    decided = await decide_claim(session, opened.claim_id, True, await scope(session, 3002), 3002)
    assert decided.decision is Decision.approved
    later = utcnow() + timedelta(hours=100)
    assert await expire_claims(session, later, after=timedelta(hours=72)) == []
    assert await told(session, LIU, "claims.expired") == 0


# --- what a decider has before them ------------------------------------------------------


async def test_deciders_list_the_open_claims_they_decide(session: AsyncSession) -> None:
    await compound(session)
    await hold_post(session, 3001, GRID)
    await hold_post(session, 3010, UNIT_2, "officer")  # a unit's officer: decides nothing
    await hold_post(session, 3009, OTHER_ZONE)
    liu = await claim(session, await tap(session, UNIT, LIU), LIU)
    # The building's officer claims a post below the building: never asked about it.
    officer = await claim(session, await tap(session, UNIT_2, 3003), 3003)
    assert liu.claim_id is not None and officer.claim_id is not None

    building_lead = await open_claims_for(session, await scope(session, 3002), 3002)
    assert [c.claim_id for c in building_lead.claims] == [liu.claim_id, officer.claim_id]
    assert building_lead.total == 2
    assert building_lead.claims[0].volunteer_name == "volunteer 5001"
    assert building_lead.claims[0].opened_at is not None
    building_officer = await open_claims_for(session, await scope(session, 3003), 3003)
    assert [c.claim_id for c in building_officer.claims] == [liu.claim_id]
    grid_lead = await open_claims_for(session, await scope(session, 3001), 3001)
    assert grid_lead.total == 2
    for outsider in (3010, 3009, STRANGER):
        assert (await open_claims_for(session, await scope(session, outsider), outsider)).total == 0
    admin = await open_claims_for(session, await scope(session, ADMINS[0]), ADMINS[0], limit=1)
    assert admin.total == 2 and len(admin.claims) == 1
    assert admin.claims[0].claim_id == liu.claim_id

    await decide_claim(session, liu.claim_id, False, await scope(session, 3002), 3002)
    after = await open_claims_for(session, await scope(session, 3002), 3002)
    assert [c.claim_id for c in after.claims] == [officer.claim_id]
