"""Claims on vacant posts and group bindings, at the domain level."""

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.access import Scope, scope_of
from models.claim_links import Claimable, check_claimable, offer_claim
from models.claims import (
    Decision,
    Withdrawal,
    decide_claim,
    deciders_of,
    open_claim,
    withdraw_claim,
)
from models.groups import (
    BindResult,
    UnbindResult,
    bind_group,
    binding_of,
    forget_group,
    migrate_group,
    nodes_held_by,
    record_group,
    unbind_group,
)
from models.invites import InviteStatus, create_invites, lookup_invite
from models.org import Member, Post
from models.people import Claim, ClaimKind, ClaimStatus, GroupChat
from models.posts import node_by_path
from models.resignation import leave_post
from models.roster import RosterSource, import_roster
from models.status import county_counts
from models.system import AuditEntry
from models.vacancies import vacancies_in_scope, vacancies_under
from tests.fixtures import (
    BUILDING,
    GRID,
    OTHER_ZONE,
    UNIT,
    ZONE,
    hold_post,
    import_example_county,
    node_at,
    post_id,
)

ADMINS = (900_001,)
GROUP = -5001


async def scope(session: AsyncSession, telegram_id: int) -> Scope:
    return await scope_of(session, telegram_id, ADMINS)


async def bound_group(session: AsyncSession, path: str = GRID, chat_id: int = GROUP) -> None:
    admin = await scope(session, ADMINS[0])
    target = await node_at(session, path)
    outcome = await bind_group(session, chat_id, "阳光小区志愿者", target.id, admin, ADMINS[0])
    assert outcome.result is BindResult.bound


async def link(session: AsyncSession, post: int, telegram_id: int) -> int:
    """The claim link a tap on the post in the bound group issues to the volunteer."""
    offer = await offer_claim(session, GROUP, post, telegram_id, max_open_per_member=1)
    assert offer.check.token_id is not None, offer.check
    return offer.check.token_id


async def actions(session: AsyncSession) -> list[str]:
    return list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


# --- vacancies -------------------------------------------------------------------------------


async def test_vacancies_under_a_node_page_through_its_subtree(session: AsyncSession) -> None:
    await import_example_county(session)
    grid = await node_at(session, GRID)
    first = await vacancies_under(session, grid.id, 0, 8)
    second = await vacancies_under(session, grid.id, 8, 8)
    # The grid, two buildings and three units: six nodes, two posts each.
    assert first.total == second.total == 12
    assert len(first.posts) == 8 and len(second.posts) == 4
    assert first.posts[0].path == GRID and first.posts[0].role == "lead"
    everything = [post.post_id for post in first.posts + second.posts]
    assert len(set(everything)) == 12
    await hold_post(session, 3001, UNIT)
    assert (await vacancies_under(session, grid.id, 0, 8)).total == 11
    assert (await vacancies_under(session, 10**9, 0, 8)).total == 0


async def test_vacancies_in_scope_are_the_subtrees_of_the_posts_held(
    session: AsyncSession,
) -> None:
    await import_example_county(session)
    nobody = await vacancies_in_scope(session, await scope(session, 4242), 0, 8)
    assert nobody.total == 0 and nobody.posts == []
    everything = await vacancies_in_scope(session, await scope(session, ADMINS[0]), 0, 100)
    assert everything.total == (await county_counts(session))["posts"]
    await hold_post(session, 3001, BUILDING)
    await hold_post(session, 3001, OTHER_ZONE, "officer")
    building_lead = await vacancies_in_scope(session, await scope(session, 3001), 0, 100)
    paths = {post.path for post in building_lead.posts}
    assert BUILDING in paths and UNIT in paths and OTHER_ZONE in paths
    assert ZONE not in paths and GRID not in paths
    assert building_lead.total == len(building_lead.posts)


# --- claiming --------------------------------------------------------------------------------


async def test_only_a_vacant_post_under_a_bound_group_can_be_claimed(
    session: AsyncSession,
) -> None:
    await import_example_county(session)
    unit_lead = await post_id(session, UNIT)
    assert (await check_claimable(session, unit_lead, 5001)).claimable is Claimable.unknown
    assert (await check_claimable(session, 10**9, 5001)).claimable is Claimable.unknown
    await bound_group(session)
    check = await check_claimable(session, unit_lead, 5001)
    assert check.claimable is Claimable.yes and check.post is not None
    assert check.post.path == UNIT
    zone_lead = await post_id(session, ZONE)
    assert (await check_claimable(session, zone_lead, 5001)).claimable is Claimable.unknown
    await hold_post(session, 3001, UNIT)
    assert (await check_claimable(session, unit_lead, 5001)).claimable is Claimable.held


async def test_a_post_takes_one_open_claim_at_a_time(session: AsyncSession) -> None:
    await import_example_county(session)
    await bound_group(session)
    unit_lead = await post_id(session, UNIT)
    # Both tapped the post before either confirmed.
    liu, chen, liu_again = [await link(session, unit_lead, who) for who in (5001, 5002, 5001)]
    first = await open_claim(session, liu, 5001, "刘志愿", "8613909719999", "zh_Hans")
    assert first.claimable is Claimable.yes and first.claim_id is not None
    claim = await session.get(Claim, first.claim_id)
    assert claim is not None
    assert (claim.kind, claim.status, claim.phone) == ("volunteer", "open", "+8613909719999")
    second = await open_claim(session, chen, 5002, "陈志愿", "+8613909718888", None)
    assert second.claimable is Claimable.pending and second.claim_id == first.claim_id
    again = await open_claim(session, liu_again, 5001, "刘志愿", "8613909719999", None)
    assert again.claimable is Claimable.yours_pending
    assert await session.scalar(select(Claim.id).where(Claim.member_id != claim.member_id)) is None
    assert (await actions(session)).count("claim.opened") == 1
    assert (await county_counts(session))["posts_filled"] == 0


async def test_the_lead_one_level_up_decides_or_the_next_one_held(session: AsyncSession) -> None:
    await import_example_county(session)
    unit_lead = await post_id(session, UNIT)
    zone_lead = await post_id(session, ZONE)
    # Nobody above holds a post yet: the command centre decides.
    assert await deciders_of(session, unit_lead, 5001) == []
    await hold_post(session, 3001, GRID)
    assert [r.telegram_id for r in await deciders_of(session, unit_lead, 5001)] == [3001]
    await hold_post(session, 3002, BUILDING, "lead")
    await hold_post(session, 3003, BUILDING, "officer")
    assert [r.telegram_id for r in await deciders_of(session, unit_lead, 5001)] == [3002, 3003]
    # The claimer is never asked about their own claim.
    assert [r.telegram_id for r in await deciders_of(session, unit_lead, 3002)] == [3003]
    assert await deciders_of(session, zone_lead, 5001) == []


async def test_approval_binds_the_post_once(session: AsyncSession) -> None:
    await import_example_county(session)
    await bound_group(session)
    await hold_post(session, 3002, BUILDING, "lead")
    await hold_post(session, 3003, BUILDING, "officer")
    # A lead elsewhere, a unit lead (not above the post), a stranger: refused.
    await hold_post(session, 3009, OTHER_ZONE)
    await hold_post(session, 3010, "县卫健局片区/阳光小区/1号楼/2单元")
    filled = (await county_counts(session))["posts_filled"]
    opened = await open_claim(
        session,
        await link(session, await post_id(session, UNIT), 5001),
        5001,
        "刘志愿",
        "+8613909719999",
        None,
    )
    assert opened.claim_id is not None
    for outsider in (3009, 3010, 4242):
        refused = await decide_claim(
            session, opened.claim_id, True, await scope(session, outsider), outsider
        )
        assert refused.decision is Decision.forbidden and refused.claim is None

    approved = await decide_claim(session, opened.claim_id, True, await scope(session, 3002), 3002)
    assert approved.decision is Decision.approved and approved.claim is not None
    assert approved.claim.volunteer.telegram_id == 5001
    assert approved.claim.volunteer_name == "刘志愿"
    assert (await county_counts(session))["posts_filled"] == filled + 1
    post = await session.get(Post, await post_id(session, UNIT))
    member = await session.scalar(select(Member).where(Member.telegram_id == 5001))
    assert post is not None and member is not None and post.holder_id == member.id

    late = await decide_claim(session, opened.claim_id, False, await scope(session, 3003), 3003)
    assert late.decision is Decision.not_open
    assert late.claim is not None and late.claim.status == ClaimStatus.approved
    assert (await county_counts(session))["posts_filled"] == filled + 1
    log = await actions(session)
    assert log.count("claim.approved") == 1 and log.count("claim.declined") == 0
    assert "post.bound" in log


async def test_decline_admins_and_a_post_taken_meanwhile(session: AsyncSession) -> None:
    await import_example_county(session)
    await bound_group(session)
    unit_lead = await post_id(session, UNIT)
    admin = await scope(session, ADMINS[0])

    liu = await link(session, unit_lead, 5001)
    declined = await open_claim(session, liu, 5001, "刘志愿", "+8613909719999", None)
    assert declined.claim_id is not None
    outcome = await decide_claim(session, declined.claim_id, False, admin, ADMINS[0])
    assert outcome.decision is Decision.declined
    assert (await check_claimable(session, unit_lead, 5002)).claimable is Claimable.yes

    chen = await link(session, unit_lead, 5002)
    taken = await open_claim(session, chen, 5002, "陈志愿", "+8613909718888", None)
    assert taken.claim_id is not None
    await hold_post(session, 3001, UNIT)  # registered by invite meanwhile
    outcome = await decide_claim(session, taken.claim_id, True, admin, ADMINS[0])
    assert outcome.decision is Decision.post_held
    claim = await session.get(Claim, taken.claim_id)
    assert claim is not None and claim.status == ClaimStatus.declined
    unknown = await decide_claim(session, 10**9, True, admin, ADMINS[0])
    assert unknown.decision is Decision.unknown
    assert (await actions(session)).count("claim.declined") == 2


async def test_nobody_decides_their_own_claim_but_the_volunteer_may_withdraw(
    session: AsyncSession,
) -> None:
    await import_example_county(session)
    await bound_group(session)
    await hold_post(session, 3002, BUILDING)
    opened = await open_claim(
        session,
        await link(session, await post_id(session, UNIT), 3002),
        3002,
        "赵强",
        "+8613909710004",
        None,
    )
    assert opened.claim_id is not None
    own = await decide_claim(session, opened.claim_id, True, await scope(session, 3002), 3002)
    assert own.decision is Decision.forbidden

    assert (await withdraw_claim(session, opened.claim_id, 4242))[0] is Withdrawal.not_yours
    result, claim = await withdraw_claim(session, opened.claim_id, 3002)
    assert result is Withdrawal.withdrawn and claim is not None and claim.status == "withdrawn"
    assert (await withdraw_claim(session, opened.claim_id, 3002))[0] is Withdrawal.not_open
    admin = await scope(session, ADMINS[0])
    after = await decide_claim(session, opened.claim_id, True, admin, ADMINS[0])
    assert after.decision is Decision.not_open
    assert "claim.withdrawn" in await actions(session)


# --- group bindings --------------------------------------------------------------------------


async def test_a_group_binds_within_the_binders_scope_only(session: AsyncSession) -> None:
    await import_example_county(session)
    await record_group(session, GROUP, "阳光小区志愿者")
    await hold_post(session, 3001, GRID)
    grid_lead = await scope(session, 3001)
    assert [held.path for held in await nodes_held_by(session, 3001)] == [GRID]

    other = await node_at(session, OTHER_ZONE)
    forged = await bind_group(session, GROUP, "t", other.id, grid_lead, 3001)
    assert forged.result is BindResult.forbidden
    unknown = await bind_group(session, GROUP, "t", 10**9, grid_lead, 3001)
    assert unknown.result is BindResult.unknown_node
    nobody = await bind_group(
        session, GROUP, "t", (await node_at(session, GRID)).id, Scope(False, frozenset()), 4242
    )
    assert nobody.result is BindResult.forbidden
    assert await binding_of(session, GROUP) is None

    building = await node_at(session, BUILDING)
    bound = await bind_group(session, GROUP, "t", building.id, grid_lead, 3001)
    assert bound.result is BindResult.bound and bound.binding is not None
    assert (bound.binding.node.path, bound.binding.vacant_posts) == (BUILDING, 6)
    again = await bind_group(session, GROUP, "t", building.id, grid_lead, 3001)
    assert again.result is BindResult.already_bound
    assert (await actions(session)).count("group.bound") == 1


async def test_unbinding_is_for_the_binder_the_leads_above_and_admins(
    session: AsyncSession,
) -> None:
    await import_example_county(session)
    await hold_post(session, 3001, GRID)
    await hold_post(session, 3002, BUILDING)
    await hold_post(session, 3009, OTHER_ZONE)
    building = await node_at(session, BUILDING)
    await bind_group(session, GROUP, "t", building.id, await scope(session, 3002), 3002)

    result, _ = await unbind_group(session, GROUP, await scope(session, 3009), 3009)
    assert result is UnbindResult.forbidden
    result, _ = await unbind_group(session, GROUP, await scope(session, 4242), 4242)
    assert result is UnbindResult.forbidden
    result, unbound = await unbind_group(session, GROUP, await scope(session, 3001), 3001)
    assert result is UnbindResult.unbound and unbound is not None and unbound.path == BUILDING
    result, _ = await unbind_group(session, GROUP, await scope(session, 3001), 3001)
    assert result is UnbindResult.not_bound
    assert "group.unbound" in await actions(session)


async def test_a_binding_survives_migration_and_is_forgotten_on_removal(
    session: AsyncSession,
) -> None:
    await import_example_county(session)
    await record_group(session, GROUP, "阳光小区志愿者")
    await bound_group(session)
    supergroup = -(10**12) - 5001
    assert await migrate_group(session, GROUP, supergroup)
    assert not await migrate_group(session, GROUP, supergroup)  # the second service message
    assert await binding_of(session, GROUP) is None
    moved = await binding_of(session, supergroup)
    assert moved is not None and moved.node.path == GRID

    await forget_group(session, supergroup, 3001)
    assert await session.get(GroupChat, supergroup) is None
    await record_group(session, supergroup, "阳光小区志愿者")
    assert await binding_of(session, supergroup) is None
    assert (await actions(session)).count("group.unbound") == 1


async def test_only_the_command_centre_decides_a_phone_mismatch(session: AsyncSession) -> None:
    await import_roster(session, [RosterSource("households.csv", MISMATCH_ROSTER)])
    node = await node_by_path(session, "片区01/幸福小区")
    assert node is not None
    post = await session.scalar(select(Post).where(Post.node_id == node.id, Post.role == "lead"))
    member = Member(telegram_id=555, name="王")
    session.add(member)
    await session.flush()
    assert post is not None
    claim = Claim(post_id=post.id, member_id=member.id, kind=ClaimKind.phone_mismatch)
    session.add(claim)
    await session.commit()

    zone_lead = Scope(is_admin=False, roots=frozenset({(node.zone_id or 0, "zone")}))
    refused = await decide_claim(session, claim.id, True, zone_lead, actor=777)
    assert refused.decision is Decision.forbidden
    admin = Scope(is_admin=True, roots=frozenset())
    approved = await decide_claim(session, claim.id, True, admin, actor=1)
    assert approved.decision is Decision.approved
    await session.refresh(post)
    assert post.holder_id == member.id


MISMATCH_ROSTER = (
    "community,zone,grid,building,unit,room\n东关社区,片区01,幸福小区,1号楼,1单元,101\n"
).encode()


async def test_an_approved_claim_withdraws_the_posts_invites_so_none_revives(
    session: AsyncSession,
) -> None:
    await import_example_county(session)
    await bound_group(session)
    await hold_post(session, 3002, BUILDING, "lead")
    unit_post = await post_id(session, UNIT)
    token = (await create_invites(session, [unit_post], timedelta(days=14), None))[unit_post]
    await session.commit()
    opened = await open_claim(
        session, await link(session, unit_post, 5001), 5001, "刘志愿", "+8613909719999", None
    )
    assert opened.claim_id is not None
    approved = await decide_claim(session, opened.claim_id, True, await scope(session, 3002), 3002)
    assert approved.decision is Decision.approved
    # The volunteer leaves; the post is vacant again, yet the old link stays dead.
    member = await session.scalar(select(Member).where(Member.telegram_id == 5001))
    assert member is not None
    assert await leave_post(session, unit_post, member.id, 5001) is not None
    assert (await lookup_invite(session, token)).status is InviteStatus.revoked
