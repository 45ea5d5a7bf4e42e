from sqlalchemy.ext.asyncio import AsyncSession

from models.system import AuditEntry


def record(
    session: AsyncSession, action: str, actor_telegram_id: int | None, **detail: object
) -> None:
    """Add an audit entry to the caller's transaction; it lands with the change it records."""
    session.add(AuditEntry(action=action, actor_telegram_id=actor_telegram_id, detail=detail))
