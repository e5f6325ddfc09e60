"""funnel snapshots

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

import crm_common.db

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

COUNTS = ("entered", "converted", "lost_here", "dwell_count", "current")


def upgrade():
    op.create_table(
        "funnel_snapshots",
        sa.Column("pipeline_id", sa.String(length=36), nullable=False),
        sa.Column("moment", crm_common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("stage_order", sa.Text(), nullable=False),
        sa.Column("used_at", crm_common.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("pipeline_id", "moment", name=op.f("pk_funnel_snapshots")),
    )
    op.create_index(
        op.f("ix_funnel_snapshots_used_at"), "funnel_snapshots", ["used_at"], unique=False
    )
    op.create_table(
        "funnel_snapshot_totals",
        sa.Column("pipeline_id", sa.String(length=36), nullable=False),
        sa.Column("moment", crm_common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("stage_id", sa.String(length=36), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=False),
        sa.Column("cohort_day", sa.String(length=10), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS),
        sa.Column("dwell_seconds", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "pipeline_id",
            "moment",
            "stage_id",
            "owner",
            "cohort_day",
            name=op.f("pk_funnel_snapshot_totals"),
        ),
    )


def downgrade():
    op.drop_table("funnel_snapshot_totals")
    op.drop_index(op.f("ix_funnel_snapshots_used_at"), table_name="funnel_snapshots")
    op.drop_table("funnel_snapshots")
