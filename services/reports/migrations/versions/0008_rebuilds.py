"""rebuilds

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

import crm_common.db

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "rebuilds",
        sa.Column("rebuild_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=True),
        sa.Column("requested_at", crm_common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", crm_common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", crm_common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", crm_common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cursors", sa.Text(), nullable=False),
        sa.Column("events_read", sa.Integer(), nullable=False),
        sa.Column("events_applied", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("rebuild_id", name=op.f("pk_rebuilds")),
    )
    with op.batch_alter_table("rebuilds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rebuilds_status"), ["status"], unique=False)


def downgrade():
    with op.batch_alter_table("rebuilds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rebuilds_status"))

    op.drop_table("rebuilds")
