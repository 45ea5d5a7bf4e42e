"""An @username names one member, or nobody for sure: usernames pass between accounts and
each member keeps the one it was last seen with."""

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.directory import member_by_username, members_by_username
from models.org import Member
from models.refusals import Refused
from models.registration import get_or_create_member

ADMINS = (900_001,)
GROUP = -5001
LIU, CHEN, STRANGER = 5001, 5002, 6666
UNIT_2 = "县卫健局片区/阳光小区/1号楼/2单元"
OTHER_UNIT = "县卫健局片区/阳光小区/2号楼/1单元"


# --- an @username names one member, or nobody for sure (#15) -----------------------------


async def test_a_username_seen_on_several_members_names_nobody(session: AsyncSession) -> None:
    first = await get_or_create_member(session, 7001, "甲", None, None, "Shared_Name")
    await session.commit()
    assert await member_by_username(session, "@shared_name") == first
    # The name passed to another account; the first member's row still says it.
    await get_or_create_member(session, 7002, "乙", None, None, "shared_name")
    await session.commit()
    assert len(await members_by_username(session, "shared_name")) == 2
    with pytest.raises(Refused) as refused:
        await member_by_username(session, "@Shared_Name")
    assert refused.value.key == "assign.ambiguous_username"
    assert refused.value.params == {"username": "Shared_Name", "count": 2}
    assert await member_by_username(session, "nobody") is None
    assert await session.scalar(select(func.count()).select_from(Member)) == 2
