"""household_reports: the household's index also holds status and round, so that a unit's
last answers (read on nearly every report tap) are found in the index alone

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_household_reports_household_status_round",
        "household_reports",
        ["household_id", "status", "round_id"],
    )
    # Its first column serves every lookup the household's own index served.
    op.drop_index("ix_household_reports_household_id", table_name="household_reports")


def downgrade() -> None:
    op.create_index("ix_household_reports_household_id", "household_reports", ["household_id"])
    op.drop_index("ix_household_reports_household_status_round", table_name="household_reports")
