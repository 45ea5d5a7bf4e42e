"""household reports: form versions, rounds, one report row per household and round

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_forms",
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_report_forms")),
    )
    op.create_table(
        "report_rounds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("opens_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("form_version", sa.String(length=32), nullable=False),
        sa.Column("households_expected", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["form_version"],
            ["report_forms.version"],
            name=op.f("fk_report_rounds_form_version_report_forms"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_rounds")),
        sa.UniqueConstraint("date", name="uq_report_rounds_date"),
    )
    op.create_table(
        "household_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=False),
        sa.Column("zone_id", sa.Integer(), nullable=False),
        sa.Column("grid_id", sa.Integer(), nullable=False),
        sa.Column("building_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("how", sa.String(length=16), nullable=True),
        sa.Column("answers", sa.JSON(), nullable=True),
        sa.Column("form_version", sa.String(length=32), nullable=True),
        sa.Column("alert", sa.Boolean(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("nobody_home_since", sa.Date(), nullable=True),
        sa.Column("reporter_member_id", sa.Integer(), nullable=True),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('missing', 'reported', 'nobody_home')",
            name=op.f("ck_household_reports_status"),
        ),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["households.id"],
            name=op.f("fk_household_reports_household_id_households"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reporter_member_id"],
            ["members.id"],
            name=op.f("fk_household_reports_reporter_member_id_members"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["report_rounds.id"],
            name=op.f("fk_household_reports_round_id_report_rounds"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_household_reports")),
        sa.UniqueConstraint(
            "round_id", "household_id", name="uq_household_reports_round_household"
        ),
    )
    with op.batch_alter_table("household_reports", schema=None) as batch_op:
        batch_op.create_index("ix_household_reports_household_id", ["household_id"])
        batch_op.create_index("ix_household_reports_round_unit", ["round_id", "unit_id"])
        batch_op.create_index("ix_household_reports_round_building", ["round_id", "building_id"])
        batch_op.create_index("ix_household_reports_round_grid", ["round_id", "grid_id"])
        batch_op.create_index("ix_household_reports_round_zone", ["round_id", "zone_id"])


def downgrade() -> None:
    with op.batch_alter_table("household_reports", schema=None) as batch_op:
        batch_op.drop_index("ix_household_reports_round_zone")
        batch_op.drop_index("ix_household_reports_round_grid")
        batch_op.drop_index("ix_household_reports_round_building")
        batch_op.drop_index("ix_household_reports_round_unit")
        batch_op.drop_index("ix_household_reports_household_id")
    op.drop_table("household_reports")
    op.drop_table("report_rounds")
    op.drop_table("report_forms")
