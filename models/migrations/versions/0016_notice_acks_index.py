"""notice_recipients: an index on acked_at, so that the console's look for changes (the
newest acknowledgement, every few seconds while a page is open) reads one index entry

Revision ID: 0016
Revises: 0015
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_notice_recipients_acked_at", "notice_recipients", ["acked_at"])


def downgrade() -> None:
    op.drop_index("ix_notice_recipients_acked_at", table_name="notice_recipients")
