"""funnel

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

import crm_common.db

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "deal_moves",
        sa.Column("deal_id", sa.String(length=36), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("pipeline_id", sa.String(length=36), nullable=False),
        sa.Column("at", crm_common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("from_stage_id", sa.String(length=36), nullable=True),
        sa.Column("to_stage_id", sa.String(length=36), nullable=True),
        sa.Column("dwell_seconds", sa.Integer(), nullable=True),
        sa.Column("stage_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=True),
        sa.Column("created_at", crm_common.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("deal_id", "sequence", name=op.f("pk_deal_moves")),
    )
    with op.batch_alter_table("deal_moves", schema=None) as batch_op:
        batch_op.create_index("ix_deal_moves_pipeline_id_at", ["pipeline_id", "at"], unique=False)

    op.create_table(
        "deal_stage_counts",
        sa.Column("deal_id", sa.String(length=36), nullable=False),
        sa.Column("stage_id", sa.String(length=36), nullable=False),
        sa.Column("pipeline_id", sa.String(length=36), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=False),
        sa.Column("cohort_day", sa.String(length=10), nullable=False),
        sa.Column("entered", sa.Integer(), nullable=False),
        sa.Column("converted", sa.Integer(), nullable=False),
        sa.Column("lost_here", sa.Integer(), nullable=False),
        sa.Column("dwell_seconds", sa.BigInteger(), nullable=False),
        sa.Column("dwell_count", sa.Integer(), nullable=False),
        sa.Column("current", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("deal_id", "stage_id", name=op.f("pk_deal_stage_counts")),
    )
    with op.batch_alter_table("deal_stage_counts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_deal_stage_counts_pipeline_id"), ["pipeline_id"], unique=False
        )

    op.create_table(
        "funnel_totals",
        sa.Column("pipeline_id", sa.String(length=36), nullable=False),
        sa.Column("stage_id", sa.String(length=36), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=False),
        sa.Column("cohort_day", sa.String(length=10), nullable=False),
        sa.Column("entered", sa.Integer(), nullable=False),
        sa.Column("converted", sa.Integer(), nullable=False),
        sa.Column("lost_here", sa.Integer(), nullable=False),
        sa.Column("dwell_seconds", sa.BigInteger(), nullable=False),
        sa.Column("dwell_count", sa.Integer(), nullable=False),
        sa.Column("current", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "pipeline_id", "stage_id", "owner", "cohort_day", name=op.f("pk_funnel_totals")
        ),
    )
    op.create_table(
        "pipeline_facts",
        sa.Column("pipeline_id", sa.String(length=36), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("pipeline_id", name=op.f("pk_pipeline_facts")),
    )
    op.create_table(
        "stage_facts",
        sa.Column("stage_id", sa.String(length=36), nullable=False),
        sa.Column("pipeline_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("stage_id", name=op.f("pk_stage_facts")),
    )
    with op.batch_alter_table("stage_facts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_stage_facts_pipeline_id"), ["pipeline_id"], unique=False
        )


def downgrade():
    with op.batch_alter_table("stage_facts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stage_facts_pipeline_id"))

    op.drop_table("stage_facts")
    op.drop_table("pipeline_facts")
    op.drop_table("funnel_totals")
    with op.batch_alter_table("deal_stage_counts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deal_stage_counts_pipeline_id"))

    op.drop_table("deal_stage_counts")
    with op.batch_alter_table("deal_moves", schema=None) as batch_op:
        batch_op.drop_index("ix_deal_moves_pipeline_id_at")

    op.drop_table("deal_moves")
