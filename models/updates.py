"""Updates already handled, by Telegram's update_id: a second delivery of one is skipped.

Telegram delivers an update again when it did not see the answer to a webhook request,
and polling fetches an update again when the bot stopped before confirming it. The claim on
an update_id is written in the update's own first commit (``claim_with_first_commit``), so
that it is committed together with what handling the update changed, or not at all: the
database decides which of two deliveries is handled, since the second insert finds the row
and the commit that carries it fails with ``AlreadyHandled``. ``claim_update`` claims in a
transaction of its own.
"""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, delete, event, exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert

from models.base import utcnow
from models.db import per_dialect
from models.sqlite_driver import QUICK
from models.system import HandledUpdate

# How long an update_id is remembered; Telegram gives up redelivering well within a day.
KEEP_HANDLED_UPDATES = timedelta(days=1)

# In a session's ``info``: the (bot_id, update_id) to claim in its next commit.
PENDING_CLAIM = "pending_update_claim"
# In an update's session's ``info``: the (bot_id, update_id) it serves, and whether the
# update's first read (the conversation state's, ``bot.fsm_storage``) found it claimed.
SERVES = "serves_update"
FOUND_HANDLED = "update_found_handled"


class AlreadyHandled(Exception):
    """The commit carrying an update's claim found the update claimed by another delivery:
    nothing of this delivery was committed."""


def _claim(insert: Callable[..., Any]) -> Insert:
    # Either dialect's insert, which has ``on_conflict_do_nothing``.
    # On the table, not the mapped class: an ORM insert's result has no row count.
    statement: Insert = (
        insert(HandledUpdate.__table__)
        .values(
            bot_id=bindparam("bot_id", type_=HandledUpdate.bot_id.type),
            update_id=bindparam("update_id", type_=HandledUpdate.update_id.type),
            handled_at=bindparam("handled_at", type_=HandledUpdate.handled_at.type),
        )
        .on_conflict_do_nothing()
    )
    return statement


# Written on every update: built once per dialect, its values bound at each execution.
_CLAIMS = per_dialect(_claim)


def _claim_statement(dialect: str, bot_id: int, update_id: int) -> tuple[Insert, dict[str, Any]]:
    values = {"bot_id": bot_id, "update_id": update_id, "handled_at": utcnow()}
    return _CLAIMS[dialect], values


async def claim_update(session: AsyncSession, bot_id: int, update_id: int) -> bool:
    """Record that this update is being handled and commit; False when it already was."""
    statement, values = _claim_statement(session.get_bind().dialect.name, bot_id, update_id)
    result = await session.execute(statement, values)
    await session.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


# Whether the update of the bound ``bot_id`` and ``update_id`` is claimed: a column that
# another read of the update can carry (``bot.fsm_storage``), saving a query per update.
HANDLED = exists().where(
    HandledUpdate.bot_id == bindparam("bot_id"),
    HandledUpdate.update_id == bindparam("update_id"),
)
# Read on every update that has no conversation state to read: built once.
_HANDLED = select(HANDLED).execution_options(**QUICK)


async def was_handled(session: AsyncSession, bot_id: int, update_id: int) -> bool:
    """Whether a claim on the update is committed (a read: no transaction is written),
    as the update's first read found it when that read carried the question."""
    found = session.info.get(FOUND_HANDLED)
    if found is not None and session.info.get(SERVES) == (bot_id, update_id):
        return bool(found)
    found = await session.scalar(_HANDLED, {"bot_id": bot_id, "update_id": update_id})
    return bool(found)


def claim_with_first_commit(session: AsyncSession, bot_id: int, update_id: int) -> None:
    """Claim the update in the session's next commit, before anything else it writes; that
    commit raises ``AlreadyHandled`` (and writes nothing) when the update is claimed."""
    session.info[PENDING_CLAIM] = (bot_id, update_id)


def claim_pending(session: AsyncSession) -> bool:
    """Whether the session's claim still waits for a commit."""
    return PENDING_CLAIM in session.info


def drop_claim(session: AsyncSession) -> None:
    session.info.pop(PENDING_CLAIM, None)


# Inserted first among the listeners, so that a delivery found handled writes nothing else.
@event.listens_for(Session, "before_commit", insert=True)
def _write_claim(session: Session) -> None:
    claim: tuple[int, int] | None = session.info.get(PENDING_CLAIM)
    if claim is None:
        return
    result = session.execute(*_claim_statement(session.get_bind().dialect.name, *claim))
    if not getattr(result, "rowcount", 0):
        raise AlreadyHandled(f"update {claim[1]} is claimed by another delivery")


@event.listens_for(Session, "after_commit")
def _claimed(session: Session) -> None:
    session.info.pop(PENDING_CLAIM, None)


async def release_update(session: AsyncSession, bot_id: int, update_id: int) -> None:
    """Forget a claim whose handling failed, so that a redelivery is handled; commits."""
    await session.execute(
        delete(HandledUpdate).where(
            HandledUpdate.bot_id == bot_id, HandledUpdate.update_id == update_id
        )
    )
    await session.commit()


async def purge_handled_updates(
    session: AsyncSession, older_than: timedelta = KEEP_HANDLED_UPDATES
) -> int:
    """Forget updates handled more than ``older_than`` ago; commits, returns how many."""
    result = await session.execute(
        delete(HandledUpdate).where(HandledUpdate.handled_at < utcnow() - older_than)
    )
    await session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
