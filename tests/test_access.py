"""The access function against a reference model: random holdings on a small county."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.access import scope_of
from models.org import Member, Node, Post
from models.roster import RosterSource, import_roster

ADMIN = 999
MEMBERS = (101, 102, 103)


def county_csv() -> bytes:
    rows = ["community,zone,grid,building,unit,room"]
    for zone in ("甲片区", "乙片区"):
        for grid in ("东", "西"):
            for building in ("1号楼", "2号楼"):
                for unit in ("1单元", "2单元"):
                    rows.append(f"社区,{zone},{zone}{grid}小区,{building},{unit},101")
    return ("\n".join(rows) + "\n").encode()


async def build_county(session: AsyncSession) -> tuple[list[Node], list[Post]]:
    if not (await session.scalars(select(Node.id).limit(1))).first():
        await import_roster(session, [RosterSource("households.csv", county_csv())])
        for telegram_id in MEMBERS:
            session.add(Member(telegram_id=telegram_id, name=f"member {telegram_id}"))
        await session.commit()
    nodes = list(await session.scalars(select(Node)))
    posts = list(await session.scalars(select(Post).order_by(Post.id)))
    return nodes, posts


def ancestors_and_self(node: Node, by_id: dict[int, Node]) -> set[int]:
    """The reference model: walk parent links, no ancestor columns."""
    chain = {node.id}
    while node.parent_id is not None:
        node = by_id[node.parent_id]
        chain.add(node.id)
    return chain


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_a_scope_is_exactly_the_subtrees_of_the_posts_held(
    session: AsyncSession, data: st.DataObject
) -> None:
    nodes, posts = await build_county(session)
    by_id = {node.id: node for node in nodes}
    member_ids = {
        telegram_id: member_id
        for telegram_id, member_id in await session.execute(select(Member.telegram_id, Member.id))
    }
    holders = data.draw(
        st.lists(st.sampled_from([None, *MEMBERS]), min_size=len(posts), max_size=len(posts))
    )
    await session.execute(update(Post).values(holder_id=None))
    for post, holder in zip(posts, holders, strict=True):
        if holder is not None:
            await session.execute(
                update(Post).where(Post.id == post.id).values(holder_id=member_ids[holder])
            )
    await session.commit()

    for telegram_id in MEMBERS:
        held_nodes = {
            post.node_id
            for post, holder in zip(posts, holders, strict=True)
            if holder == telegram_id
        }
        scope = await scope_of(session, telegram_id, [ADMIN])
        assert scope.is_empty == (not held_nodes)
        for node in nodes:
            chain = ancestors_and_self(node, by_id)
            assert scope.sees(node) == bool(chain & held_nodes), (telegram_id, node.path)
            assert scope.manages(node) == bool((chain - {node.id}) & held_nodes), node.path

    admin = await scope_of(session, ADMIN, [ADMIN])
    assert all(admin.sees(node) and admin.manages(node) for node in nodes)
    stranger = await scope_of(session, 4242, [ADMIN])
    assert stranger.is_empty and not any(stranger.sees(node) for node in nodes)
