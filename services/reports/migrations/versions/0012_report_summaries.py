"""report summaries: funnel totals per owner, segment totals

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

COUNTS = ("entered", "converted", "lost_here", "dwell_count", "current")


def upgrade():
    op.create_table(
        "funnel_owner_totals",
        sa.Column("pipeline_id", sa.String(length=36), nullable=False),
        sa.Column("stage_id", sa.String(length=36), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS),
        sa.Column("dwell_seconds", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "pipeline_id", "stage_id", "owner", name=op.f("pk_funnel_owner_totals")
        ),
    )
    op.create_table(
        "segment_totals",
        sa.Column("segment", sa.String(length=16), nullable=False),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column("monetary_cents", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("segment", name=op.f("pk_segment_totals")),
    )
    # Views already built start with their sums.
    sums = ", ".join(f"SUM({name})" for name in (*COUNTS, "dwell_seconds"))
    op.execute(
        f"INSERT INTO funnel_owner_totals (pipeline_id, stage_id, owner, "
        f"{', '.join(COUNTS)}, dwell_seconds) "
        f"SELECT pipeline_id, stage_id, owner, {sums} FROM funnel_totals "
        "GROUP BY pipeline_id, stage_id, owner"
    )
    op.execute(
        "INSERT INTO segment_totals (segment, customers, monetary_cents) "
        "SELECT segment, COUNT(*), SUM(monetary_cents) FROM customer_segments GROUP BY segment"
    )


def downgrade():
    op.drop_table("segment_totals")
    op.drop_table("funnel_owner_totals")
