"""chasing missing reports up the tree, daily summaries and their charts

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chase_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("nodes", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('fired', 'skipped', 'superseded')", name=op.f("ck_chase_runs_outcome")
        ),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["report_rounds.id"],
            name=op.f("fk_chase_runs_round_id_report_rounds"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chase_runs")),
        sa.UniqueConstraint("round_id", "step", name="uq_chase_runs_round_step"),
    )
    op.create_table(
        "chase_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=32), nullable=False),
        sa.Column("late_units", sa.Integer(), nullable=False),
        sa.Column("missing", sa.Integer(), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("nudged_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["node_id"], ["nodes.id"], name=op.f("fk_chase_steps_node_id_nodes"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["report_rounds.id"],
            name=op.f("fk_chase_steps_round_id_report_rounds"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chase_steps")),
        sa.UniqueConstraint("round_id", "node_id", "step", name="uq_chase_steps_round_node_step"),
    )
    with op.batch_alter_table("chase_steps", schema=None) as batch_op:
        batch_op.create_index("ix_chase_steps_node_id", ["node_id"], unique=False)
    op.create_table(
        "chase_summaries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chase_summaries")),
        sa.UniqueConstraint("day", name="uq_chase_summaries_day"),
    )
    op.create_table(
        "chart_images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("media_type", sa.String(length=32), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chart_images")),
    )
    with op.batch_alter_table("chart_images", schema=None) as batch_op:
        batch_op.create_index("ix_chart_images_created_at", ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("chart_images", schema=None) as batch_op:
        batch_op.drop_index("ix_chart_images_created_at")
    op.drop_table("chart_images")
    op.drop_table("chase_summaries")
    with op.batch_alter_table("chase_steps", schema=None) as batch_op:
        batch_op.drop_index("ix_chase_steps_node_id")
    op.drop_table("chase_steps")
    op.drop_table("chase_runs")
