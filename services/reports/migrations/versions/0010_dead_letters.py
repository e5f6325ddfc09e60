"""dead letters: events this service's handlers could not apply, with their error

Revision ID: 0010
Revises: 0009
"""

from alembic import op

from crm_common.migrations import create_dead_letters_table

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    create_dead_letters_table(op)


def downgrade():
    op.drop_table("dead_letters")
