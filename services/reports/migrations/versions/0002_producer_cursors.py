"""producer cursors

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

import crm_common.db

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "producer_cursors",
        sa.Column("producer", sa.String(length=32), nullable=False),
        sa.Column("cursor", sa.String(length=64), nullable=False),
        sa.Column("updated_at", crm_common.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("producer", name=op.f("pk_producer_cursors")),
    )


def downgrade():
    op.drop_table("producer_cursors")
