"""Tables of the people feature: invitations, claims on posts, and bound group chats."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class Invite(Base):
    """A one-time invitation to one post. Only a hash of the token is stored, so a copy of
    the database yields no usable link."""

    __tablename__ = "invites"
    __table_args__ = (Index("ix_invites_post_id", "post_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()
    used_by: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    revoked_at: Mapped[datetime | None] = mapped_column()


class ClaimKind(StrEnum):
    # A volunteer asks for a vacant post from a group chat.
    volunteer = "volunteer"
    # An invited person whose phone differs from the roster's: an admin decides.
    phone_mismatch = "phone_mismatch"


class ClaimStatus(StrEnum):
    open = "open"
    approved = "approved"
    declined = "declined"
    withdrawn = "withdrawn"
    # Nobody decided within ``[claims] expire_after_hours``.
    expired = "expired"


# One open volunteer's claim per post, refused by the database itself: a check before the
# insert cannot serialise two volunteers on SQLite, where ``FOR UPDATE`` does nothing.
OPEN_VOLUNTEER_CLAIM = "status = 'open' AND kind = 'volunteer'"


class Claim(Base):
    __tablename__ = "claims"
    __table_args__ = (
        CheckConstraint("kind IN ('volunteer', 'phone_mismatch')", name="kind"),
        CheckConstraint(
            "status IN ('open', 'approved', 'declined', 'withdrawn', 'expired')", name="status"
        ),
        Index("ix_claims_post_status", "post_id", "status"),
        Index(
            "uq_claims_open_volunteer_post",
            "post_id",
            unique=True,
            sqlite_where=text(OPEN_VOLUNTEER_CLAIM),
            postgresql_where=text(OPEN_VOLUNTEER_CLAIM),
        ),
        Index("ix_claims_member_status", "member_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=ClaimStatus.open)
    phone: Mapped[str | None] = mapped_column(String(32))
    invite_id: Mapped[int | None] = mapped_column(ForeignKey("invites.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column()
    decided_by: Mapped[int | None] = mapped_column(BigInteger)


class ClaimToken(Base):
    """A claim link: issued to one Telegram user by their tap on a vacant post in a bound
    group, redeemable by that user alone until it expires, once. Only a hash of the token
    is kept, as for invites."""

    __tablename__ = "claim_tokens"
    __table_args__ = (Index("ix_claim_tokens_expires_at", "expires_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    # The group the post was tapped in (no foreign key: a group that is forgotten or
    # becomes a supergroup leaves its links to fail the check against its binding).
    group_chat_id: Mapped[int] = mapped_column(BigInteger)
    telegram_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()


class GroupChat(Base):
    """A volunteers' group chat bound to one node; it sees counts and statuses only."""

    __tablename__ = "group_chats"
    __table_args__ = (Index("ix_group_chats_node_id", "node_id"),)

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    title: Mapped[str] = mapped_column(String(255), default="")
    node_id: Mapped[int | None] = mapped_column(ForeignKey("nodes.id", ondelete="SET NULL"))
    bound_by: Mapped[int | None] = mapped_column(BigInteger)
    bound_at: Mapped[datetime | None] = mapped_column()
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


class SeenUser(Base):
    """Someone the bot has heard from, registered or not, as last seen: so that the command
    centre can appoint a person by @username or id before they hold any post. A username
    passes between accounts; the row last seen with it keeps it, the others lose it."""

    __tablename__ = "seen_users"

    telegram_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # Without the @, lower-cased.
    username: Mapped[str | None] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    locale: Mapped[str | None] = mapped_column(String(16))
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)
