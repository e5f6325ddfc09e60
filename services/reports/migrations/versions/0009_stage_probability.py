"""stage probability

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("stage_facts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("probability_bp", sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table("stage_facts", schema=None) as batch_op:
        batch_op.drop_column("probability_bp")
