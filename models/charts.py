"""Images the domain drew (the daily summary's charts), kept until they are sent: an outbox
row names one by id (``models.messages.Chart``) and the channel adapter uploads its
bytes."""

from datetime import datetime, timedelta

from sqlalchemy import Index, Integer, LargeBinary, String, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class ChartImage(Base):
    __tablename__ = "chart_images"
    __table_args__ = (Index("ix_chart_images_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # "image/png".
    media_type: Mapped[str] = mapped_column(String(32))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


async def store_chart(session: AsyncSession, content: bytes, media_type: str = "image/png") -> int:
    """Keep ``content`` in the caller's transaction; its id."""
    image_id = await session.scalar(
        insert(ChartImage)
        .values(media_type=media_type, content=content, created_at=utcnow())
        .returning(ChartImage.id)
    )
    if image_id is None:
        raise RuntimeError("the chart was not stored")
    return int(image_id)


async def chart_contents(session: AsyncSession, image_ids: set[int]) -> dict[int, bytes]:
    if not image_ids:
        return {}
    rows = await session.execute(
        select(ChartImage.id, ChartImage.content).where(ChartImage.id.in_(image_ids))
    )
    return {image_id: bytes(content) for image_id, content in rows}


async def purge_charts(session: AsyncSession, older_than: timedelta) -> int:
    """Forget charts older than ``older_than`` (long sent, or never will be). No commit."""
    result = await session.execute(
        delete(ChartImage).where(ChartImage.created_at < utcnow() - older_than),
        execution_options={"synchronize_session": False},
    )
    return int(getattr(result, "rowcount", 0) or 0)
