"""outbox rows in the domain's words: a catalog text or a notice, with actions

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 07:30:00

Rows queued before this revision hold Bot API payloads that no adapter renders any more:
those not yet sent are settled as failed, with the reason, instead of being sent wrong.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "UPDATE outbox SET status = 'failed', "
        "last_error = 'queued in the format before revision 0006; not sent' "
        "WHERE status IN ('pending', 'sending')"
    )
    op.execute("UPDATE outbox SET kind = 'text' WHERE kind <> 'text'")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_outbox_kind"), type_="check")
        batch_op.create_check_constraint(op.f("ck_outbox_kind"), "kind IN ('text', 'notice')")
        batch_op.create_index("ix_outbox_member_id", ["member_id"], unique=False)


def downgrade() -> None:
    op.execute("DELETE FROM outbox")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_member_id")
        batch_op.drop_constraint(op.f("ck_outbox_kind"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_outbox_kind"), sa.text("kind IN ('text', 'copy', 'photo', 'document')")
        )
