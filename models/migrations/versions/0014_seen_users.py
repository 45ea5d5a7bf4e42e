"""seen_users: everyone who has messaged the bot, for /assign @user before they hold a post

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "seen_users",
        sa.Column("telegram_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("telegram_id", name=op.f("pk_seen_users")),
    )
    op.create_index(op.f("ix_seen_users_username"), "seen_users", ["username"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_seen_users_username"), table_name="seen_users")
    op.drop_table("seen_users")
