"""order-tolerant customer facts

Revision ID: 0003
Revises: 0002
Created: 2026-11-23 17:45:26.719498
"""

import sqlalchemy as sa
from alembic import op

import crm_common.db

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("customer_facts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("status_sequence", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("owner_sequence", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("merged_into", sa.String(length=36), nullable=True))
        batch_op.alter_column("status", existing_type=sa.VARCHAR(length=16), nullable=True)
        batch_op.alter_column(
            "created_at", existing_type=crm_common.db.UTCDateTime(timezone=True), nullable=True
        )
        batch_op.create_index(
            batch_op.f("ix_customer_facts_merged_into"), ["merged_into"], unique=False
        )
    # Facts so far came from customer_created alone: their fields were set at their sequence.
    op.execute("UPDATE customer_facts SET status_sequence = sequence, owner_sequence = sequence")


def downgrade():
    with op.batch_alter_table("customer_facts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_facts_merged_into"))
        batch_op.alter_column(
            "created_at", existing_type=crm_common.db.UTCDateTime(timezone=True), nullable=False
        )
        batch_op.alter_column("status", existing_type=sa.VARCHAR(length=16), nullable=False)
        batch_op.drop_column("merged_into")
        batch_op.drop_column("owner_sequence")
        batch_op.drop_column("status_sequence")
