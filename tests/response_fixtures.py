"""The example county with people in the chain above one unit, for alerts and needs."""

from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.messages import AlertBody, decode
from models.org import Household, Member, Node, Role
from models.outbox.table import OutboxMessage
from models.posts import bind, node_by_path, post_at
from models.roster import RosterSource, import_roster
from models.system import AuditEntry

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ZONE = "县卫健局片区"
GRID = "县卫健局片区/阳光小区"
OTHER_GRID = "县卫健局片区/康乐家园"
BUILDING = "县卫健局片区/阳光小区/1号楼"
UNIT = "县卫健局片区/阳光小区/1号楼/1单元"
OTHER_UNIT = "县教育局片区/育才家属院/2号楼/1单元"
ADMIN = 900_001

ZONE_LEAD, ZONE_OFFICER = 7001, 7011
GRID_LEAD, GRID_OFFICER = 7002, 7003
BUILDING_LEAD = 7004  # the building's officer post stays vacant
UNIT_LEAD, UNIT_OFFICER = 7005, 7015
OUTSIDER = 7006  # a unit lead in another zone, reading English
OTHER_GRID_LEAD = 7008

PEOPLE = [
    (ZONE, Role.lead, ZONE_LEAD, "张建国"),
    (ZONE, Role.officer, ZONE_OFFICER, "李娜"),
    (GRID, Role.lead, GRID_LEAD, "王芳"),
    (GRID, Role.officer, GRID_OFFICER, "马晓东"),
    (BUILDING, Role.lead, BUILDING_LEAD, "赵强"),
    (UNIT, Role.lead, UNIT_LEAD, "马秀兰"),
    (UNIT, Role.officer, UNIT_OFFICER, "韩梅"),
    (OTHER_UNIT, Role.lead, OUTSIDER, "祁玉梅"),
    (OTHER_GRID, Role.lead, OTHER_GRID_LEAD, "冶成"),
]
ENGLISH_READERS = {OUTSIDER, GRID_OFFICER}
# Who stands above the unit: the building, grid and zone posts that are held.
ABOVE_UNIT = {BUILDING_LEAD, GRID_LEAD, GRID_OFFICER, ZONE_LEAD, ZONE_OFFICER}


async def seat_county(session_factory: async_sessionmaker[AsyncSession]) -> None:
    async with session_factory() as session:
        await import_roster(
            session,
            [
                RosterSource("households.csv", (EXAMPLES / "households.csv").read_bytes()),
                RosterSource("people.csv", (EXAMPLES / "people.csv").read_bytes()),
            ],
        )
    async with session_factory() as session:
        for path, role, telegram_id, name in PEOPLE:
            locale = "en" if telegram_id in ENGLISH_READERS else "zh_Hans"
            member = Member(telegram_id=telegram_id, name=name, locale=locale, reachable=True)
            session.add(member)
            await session.flush()
            node = await node_by_path(session, path)
            assert node is not None, path
            post = await post_at(session, node.id, role)
            assert post is not None
            await bind(session, post, member, None, how="test")
        await session.commit()


async def node_id(session: AsyncSession, path: str) -> int:
    node = await node_by_path(session, path)
    assert node is not None, path
    return node.id


async def member_id(session: AsyncSession, telegram_id: int) -> int:
    found = await session.scalar(select(Member.id).where(Member.telegram_id == telegram_id))
    assert found is not None
    return found


async def household(session: AsyncSession, unit_path: str, room: str) -> int:
    found = await session.scalar(
        select(Household.id)
        .join(Node, Node.id == Household.unit_id)
        .where(Node.path == unit_path, Household.room == room)
    )
    assert found is not None
    return found


async def queued(session: AsyncSession, source: str) -> list[OutboxMessage]:
    rows = await session.scalars(
        select(OutboxMessage).where(OutboxMessage.source == source).order_by(OutboxMessage.id)
    )
    return list(rows)


def key_of(row: OutboxMessage) -> str:
    content, _ = decode(row.payload)
    if isinstance(content, AlertBody):
        return "alert.escalated" if content.escalated else "alert"
    return str(getattr(content, "key", ""))


async def audited(session: AsyncSession, action: str) -> int:
    count = await session.scalar(
        select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action)
    )
    return int(count or 0)
