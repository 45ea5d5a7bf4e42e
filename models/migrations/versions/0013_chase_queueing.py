"""the ladder's messages queued after the step is recorded, in short transactions and as
fast as they are sent; a partial index over the households still missing; two outbox
indexes no query used

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MISSING = sa.text("status = 'missing'")
MISSING_COLUMNS = ["round_id", "unit_id", "building_id", "grid_id", "zone_id", "household_id"]


def upgrade() -> None:
    with op.batch_alter_table("chase_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("queued_through", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True))
    # Steps fired before this revision queued their messages in the firing transaction.
    op.execute("UPDATE chase_runs SET queued_at = at WHERE outcome = 'fired'")
    op.create_index(
        "ix_household_reports_missing",
        "household_reports",
        MISSING_COLUMNS,
        unique=False,
        sqlite_where=MISSING,
        postgresql_where=MISSING,
    )
    # The claim order index serves every query by status; nothing looks rows up by member.
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_status_next_attempt_at")
        batch_op.drop_index("ix_outbox_member_id")


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_member_id", ["member_id"], unique=False)
        batch_op.create_index(
            "ix_outbox_status_next_attempt_at", ["status", "next_attempt_at"], unique=False
        )
    op.drop_index("ix_household_reports_missing", table_name="household_reports")
    with op.batch_alter_table("chase_runs", schema=None) as batch_op:
        batch_op.drop_column("queued_at")
        batch_op.drop_column("queued_through")
