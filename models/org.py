"""The organisation: zone → grid → building → unit nodes, households, posts and members.

Every node carries the ids of its ancestors by level (``zone_id`` … ``unit_id``, its own
level included), so "everything under node N" is one indexed equality on the column of
N's level, on SQLite and PostgreSQL alike. The tree has a fixed depth, which is what makes
this simpler than a materialised path string.
"""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from models.base import Base, utcnow


class Level(StrEnum):
    zone = "zone"
    grid = "grid"
    building = "building"
    unit = "unit"

    @property
    def depth(self) -> int:
        return LEVELS.index(self)

    @property
    def ancestor_column(self) -> str:
        return f"{self.value}_id"


LEVELS: tuple[Level, ...] = (Level.zone, Level.grid, Level.building, Level.unit)


class Role(StrEnum):
    lead = "lead"
    officer = "officer"


class Node(Base):
    __tablename__ = "nodes"
    __table_args__ = (
        UniqueConstraint("path", name="uq_nodes_path"),
        CheckConstraint("level IN ('zone', 'grid', 'building', 'unit')", name="level"),
        Index("ix_nodes_parent_name", "parent_id", "name"),
        Index("ix_nodes_zone_id", "zone_id"),
        Index("ix_nodes_grid_id", "grid_id"),
        Index("ix_nodes_building_id", "building_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    level: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    # Names joined with "/": zone/grid/building/unit. Names never contain "/".
    path: Mapped[str] = mapped_column(String(1000))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"))
    community: Mapped[str | None] = mapped_column(String(200))
    zone_id: Mapped[int | None] = mapped_column(Integer)
    grid_id: Mapped[int | None] = mapped_column(Integer)
    building_id: Mapped[int | None] = mapped_column(Integer)
    unit_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Household(Base):
    __tablename__ = "households"
    __table_args__ = (
        UniqueConstraint("unit_id", "room", name="uq_households_unit_room"),
        Index("ix_households_zone_id", "zone_id"),
        Index("ix_households_grid_id", "grid_id"),
        Index("ix_households_building_id", "building_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"))
    room: Mapped[str] = mapped_column(String(100))
    zone_id: Mapped[int] = mapped_column(Integer)
    grid_id: Mapped[int] = mapped_column(Integer)
    building_id: Mapped[int] = mapped_column(Integer)
    # Household attributes kept between reporting rounds (vulnerable people and the like).
    attributes: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Member(Base):
    __tablename__ = "members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    telegram_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    # Telegram @username without the @, lower-cased, as last seen; for /whois @user.
    username: Mapped[str | None] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(32))
    locale: Mapped[str | None] = mapped_column(String(16))
    reachable: Mapped[bool] = mapped_column(Boolean, default=True)
    unreachable_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Post(Base):
    __tablename__ = "posts"
    __table_args__ = (
        UniqueConstraint("node_id", "role", name="uq_posts_node_role"),
        CheckConstraint("role IN ('lead', 'officer')", name="role"),
        Index("ix_posts_holder_id", "holder_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    # Null while the post is vacant.
    holder_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    held_since: Mapped[datetime | None] = mapped_column()
    # Who the county's roster says should hold the post, before anyone registers.
    roster_name: Mapped[str | None] = mapped_column(String(200))
    roster_phone: Mapped[str | None] = mapped_column(String(32))


def subtree(node_id: int | None, level: str | None) -> ColumnElement[bool]:
    """``Node`` rows in the subtree of the node (itself included): one equality on an
    indexed ancestor column. ``node_id`` None: the whole county."""
    if node_id is None or level is None:
        return true()
    column: ColumnElement[int] = getattr(Node, Level(level).ancestor_column)
    return column == node_id


def under(node: Node | None) -> ColumnElement[bool]:
    """``Node`` rows in the subtree of ``node`` (the county for None)."""
    return subtree(None, None) if node is None else subtree(node.id, node.level)
