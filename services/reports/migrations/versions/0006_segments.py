"""segments

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

import crm_common.db

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "customer_segments",
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("segment", sa.String(length=16), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("recency_days", sa.Integer(), nullable=True),
        sa.Column("frequency", sa.Integer(), nullable=False),
        sa.Column("monetary_cents", sa.BigInteger(), nullable=False),
        sa.Column("engagement", sa.Integer(), nullable=False),
        sa.Column("changed_at", crm_common.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer_segments")),
    )
    with op.batch_alter_table("customer_segments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customer_segments_segment"), ["segment"], unique=False)

    op.create_table(
        "interaction_facts",
        sa.Column("interaction_id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("occurred_at", crm_common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("interaction_id", name=op.f("pk_interaction_facts")),
    )
    with op.batch_alter_table("interaction_facts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_interaction_facts_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_interaction_facts_occurred_at"), ["occurred_at"], unique=False
        )

    with op.batch_alter_table("deal_moves", schema=None) as batch_op:
        batch_op.add_column(sa.Column("customer_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("amount_cents", sa.BigInteger(), nullable=True))


def downgrade():
    with op.batch_alter_table("deal_moves", schema=None) as batch_op:
        batch_op.drop_column("amount_cents")
        batch_op.drop_column("customer_id")

    with op.batch_alter_table("interaction_facts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_interaction_facts_occurred_at"))
        batch_op.drop_index(batch_op.f("ix_interaction_facts_customer_id"))

    op.drop_table("interaction_facts")
    with op.batch_alter_table("customer_segments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_segments_segment"))

    op.drop_table("customer_segments")
