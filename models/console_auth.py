"""Logging in to the web console by the bot: ``/console`` issues a one-time link, opening it
starts a session bound to the member, and ``/console`` again ends every earlier session.

Only SHA-256 hashes of the link and session tokens are stored, so a copy of the database
opens nothing. Whether the member may still see a node is asked again on every request
(``models.access.scope_of``): a member who loses its post loses the console at once.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, Index, Integer, String, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from models.access import Scope
from models.audit import record
from models.base import Base, utcnow
from models.org import Member, Node, Post

TOKEN_BYTES = 32


class ConsoleLink(Base):
    __tablename__ = "console_links"
    __table_args__ = (Index("ix_console_links_member_id", "member_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()


class ConsoleSession(Base):
    __tablename__ = "console_sessions"
    __table_args__ = (Index("ix_console_sessions_member_id", "member_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_link(
    session: AsyncSession, member: Member, lifetime: timedelta, now: datetime | None = None
) -> str:
    """A new one-time link token for ``member``; every earlier link and session of the
    member ends. Commits."""
    moment = now or utcnow()
    await _end_all(session, member.id, moment)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    session.add(
        ConsoleLink(
            token_hash=token_hash(token),
            member_id=member.id,
            created_at=moment,
            expires_at=moment + lifetime,
        )
    )
    record(session, "console.link_issued", member.telegram_id, member_id=member.id)
    await session.commit()
    return token


async def _end_all(session: AsyncSession, member_id: int, moment: datetime) -> None:
    await session.execute(
        update(ConsoleLink)
        .where(ConsoleLink.member_id == member_id, ConsoleLink.used_at.is_(None))
        .values(used_at=moment),
        execution_options={"synchronize_session": False},
    )
    await session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.member_id == member_id, ConsoleSession.ended_at.is_(None))
        .values(ended_at=moment),
        execution_options={"synchronize_session": False},
    )


@dataclass(frozen=True)
class Opened:
    session_token: str
    member_id: int
    expires_at: datetime


async def open_link(
    session: AsyncSession, token: str, lifetime: timedelta, now: datetime | None = None
) -> Opened | None:
    """Spend a link token on a new session; None for an unknown, used or expired link.
    The conditional update lets exactly one of two racing openers through. Commits."""
    moment = now or utcnow()
    digest = token_hash(token)
    result = await session.execute(
        update(ConsoleLink)
        .where(
            ConsoleLink.token_hash == digest,
            ConsoleLink.used_at.is_(None),
            ConsoleLink.expires_at > moment,
        )
        .values(used_at=moment)
        .returning(ConsoleLink.member_id),
        execution_options={"synchronize_session": False},
    )
    member_id = result.scalar_one_or_none()
    if member_id is None:
        await session.rollback()
        return None
    session_token = secrets.token_urlsafe(TOKEN_BYTES)
    expires_at = moment + lifetime
    session.add(
        ConsoleSession(
            token_hash=token_hash(session_token),
            member_id=member_id,
            created_at=moment,
            expires_at=expires_at,
        )
    )
    member = await session.get(Member, member_id)
    record(
        session,
        "console.session_opened",
        member.telegram_id if member else None,
        member_id=member_id,
    )
    await session.commit()
    return Opened(session_token, member_id, expires_at)


async def session_member(
    session: AsyncSession, session_token: str, now: datetime | None = None
) -> Member | None:
    """The member a live session belongs to; None for an unknown, ended or expired one."""
    moment = now or utcnow()
    found = await session.scalar(
        select(ConsoleSession.member_id).where(
            ConsoleSession.token_hash == token_hash(session_token),
            ConsoleSession.ended_at.is_(None),
            ConsoleSession.expires_at > moment,
        )
    )
    if found is None:
        return None
    return await session.get(Member, found)


async def end_session(session: AsyncSession, session_token: str) -> None:
    """Log out. Commits."""
    await session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.token_hash == token_hash(session_token))
        .values(ended_at=utcnow()),
        execution_options={"synchronize_session": False},
    )
    await session.commit()


async def live_scopes(
    session: AsyncSession, admin_ids: list[int] | tuple[int, ...], now: datetime | None = None
) -> dict[str, Scope]:
    """Every live session's scope by token hash, in one query: what open live streams
    check on each push instead of a query each. A session whose member holds no post and
    is not of the command centre has none."""
    moment = now or utcnow()
    rows = await session.execute(
        select(ConsoleSession.token_hash, Member.telegram_id, Node.id, Node.level)
        .join(Member, Member.id == ConsoleSession.member_id)
        .outerjoin(Post, Post.holder_id == Member.id)
        .outerjoin(Node, Node.id == Post.node_id)
        .where(ConsoleSession.ended_at.is_(None), ConsoleSession.expires_at > moment)
    )
    found: dict[str, tuple[bool, set[tuple[int, str]]]] = {}
    for digest, telegram_id, node_id, level in rows:
        entry = found.setdefault(digest, (telegram_id in admin_ids, set()))
        if node_id is not None:
            entry[1].add((node_id, level))
    scopes = {digest: Scope(admin, frozenset(roots)) for digest, (admin, roots) in found.items()}
    return {digest: scope for digest, scope in scopes.items() if not scope.is_empty}
