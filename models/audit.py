"""The audit log: who did or read what, written in the transaction of what it records.

An entry is kept in the session until it commits and written then, with the other entries of
that commit, by one statement built once: the ORM's flush of an added object cost more than
the rest of a report button's work, and a read's entry written at once would begin the write
transaction (and, on SQLite, take the write lock) before the update's other reads. A rollback
drops the entries with everything else the transaction held.
"""

from typing import Any

from sqlalchemy import event, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from models.base import utcnow
from models.system import AuditEntry

# In the session's ``info``: the entries waiting for the next commit.
PENDING = "audit_pending"

_INSERT = insert(AuditEntry.__table__)  # type: ignore[arg-type] # a Table, typed as its base


def record(
    session: AsyncSession, action: str, actor_telegram_id: int | None, **detail: object
) -> None:
    """Add an audit entry to the caller's transaction; it lands with the change it records."""
    entry = {
        "at": utcnow(),
        "action": action,
        "actor_telegram_id": actor_telegram_id,
        "detail": detail,
    }
    session.info.setdefault(PENDING, []).append(entry)


@event.listens_for(Session, "before_commit")
def _write_entries(session: Session) -> None:
    entries: list[dict[str, Any]] | None = session.info.get(PENDING)
    if entries:
        session.execute(_INSERT, entries)


@event.listens_for(Session, "after_transaction_end")
def _ended(session: Session, transaction: SessionTransaction) -> None:
    # Written by its commit, or dropped with a rollback or a close.
    if transaction.parent is None:
        session.info.pop(PENDING, None)
