"""members.username for /whois @user

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("members") as batch_op:
        batch_op.add_column(sa.Column("username", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_members_username", ["username"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("members") as batch_op:
        batch_op.drop_index("ix_members_username")
        batch_op.drop_column("username")
