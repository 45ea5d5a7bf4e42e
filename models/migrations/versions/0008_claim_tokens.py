"""claim links issued by a tap in a group; claims expire; one open volunteer's claim per post

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 08:30:00

Open volunteer claims left over from before (two on one post could be opened at once on
SQLite) are kept but the later ones are declined first, so that the unique index on the
open claim of a post can be built.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN_VOLUNTEER_CLAIM = "status = 'open' AND kind = 'volunteer'"


def upgrade() -> None:
    op.create_table(
        "claim_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("group_chat_id", sa.BigInteger(), nullable=False),
        sa.Column("telegram_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["post_id"],
            ["posts.id"],
            name=op.f("fk_claim_tokens_post_id_posts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_claim_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_claim_tokens_token_hash")),
    )
    with op.batch_alter_table("claim_tokens", schema=None) as batch_op:
        batch_op.create_index("ix_claim_tokens_expires_at", ["expires_at"], unique=False)

    # Every open volunteer's claim but the first of its post is declined (no one decided it).
    op.execute(
        "UPDATE claims SET status = 'declined' "
        "WHERE status = 'open' AND kind = 'volunteer' AND id NOT IN ("
        "SELECT MIN(id) FROM claims WHERE status = 'open' AND kind = 'volunteer' "
        "GROUP BY post_id)"
    )
    with op.batch_alter_table("claims", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_claims_status"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_claims_status"),
            "status IN ('open', 'approved', 'declined', 'withdrawn', 'expired')",
        )
        batch_op.create_index("ix_claims_member_status", ["member_id", "status"], unique=False)
        batch_op.create_index(
            "uq_claims_open_volunteer_post",
            ["post_id"],
            unique=True,
            sqlite_where=sa.text(OPEN_VOLUNTEER_CLAIM),
            postgresql_where=sa.text(OPEN_VOLUNTEER_CLAIM),
        )


def downgrade() -> None:
    op.execute("UPDATE claims SET status = 'declined' WHERE status = 'expired'")
    with op.batch_alter_table("claims", schema=None) as batch_op:
        batch_op.drop_index("uq_claims_open_volunteer_post")
        batch_op.drop_index("ix_claims_member_status")
        batch_op.drop_constraint(op.f("ck_claims_status"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_claims_status"), "status IN ('open', 'approved', 'declined', 'withdrawn')"
        )
    with op.batch_alter_table("claim_tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_claim_tokens_expires_at")
    op.drop_table("claim_tokens")
