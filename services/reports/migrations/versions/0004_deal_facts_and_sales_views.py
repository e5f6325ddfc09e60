"""deal facts and sales views

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "deal_facts",
        sa.Column("deal_id", sa.String(length=36), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("pipeline_id", sa.String(length=36), nullable=False),
        sa.Column("stage_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("probability_bp", sa.Integer(), nullable=False),
        sa.Column("expected_close_date", sa.String(length=10), nullable=True),
        sa.Column("closed_at", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("deal_id", name=op.f("pk_deal_facts")),
    )
    with op.batch_alter_table("deal_facts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_deal_facts_customer_id"), ["customer_id"], unique=False
        )

    op.create_table(
        "sales_forecast",
        sa.Column("owner", sa.String(length=100), nullable=False),
        sa.Column("month", sa.String(length=11), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("deals", sa.Integer(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("weighted_cents", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("owner", "month", "currency", name=op.f("pk_sales_forecast")),
    )
    op.create_table(
        "sales_performance",
        sa.Column("owner", sa.String(length=100), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("won", sa.Integer(), nullable=False),
        sa.Column("lost", sa.Integer(), nullable=False),
        sa.Column("won_cents", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("owner", "month", "currency", name=op.f("pk_sales_performance")),
    )


def downgrade():
    op.drop_table("sales_performance")
    op.drop_table("sales_forecast")
    with op.batch_alter_table("deal_facts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deal_facts_customer_id"))

    op.drop_table("deal_facts")
