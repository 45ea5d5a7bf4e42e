"""handled_updates: update_ids already handled, so that a second delivery is skipped

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "handled_updates",
        sa.Column("bot_id", sa.BigInteger(), nullable=False),
        sa.Column("update_id", sa.BigInteger(), nullable=False),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("bot_id", "update_id", name=op.f("pk_handled_updates")),
    )
    with op.batch_alter_table("handled_updates") as batch_op:
        batch_op.create_index("ix_handled_updates_handled_at", ["handled_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("handled_updates") as batch_op:
        batch_op.drop_index("ix_handled_updates_handled_at")
    op.drop_table("handled_updates")
