"""outbox log positions: events are numbered in the log once committed, so writers no
longer wait for each other's commits (crm_common/outbox.py)

Revision ID: 0004
Revises: 0003
"""

from alembic import op

from crm_common.migrations import add_outbox_log_positions, drop_outbox_log_positions

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    add_outbox_log_positions(op)


def downgrade():
    drop_outbox_log_positions(op)
