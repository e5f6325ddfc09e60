"""sqlite import times: customers imported before bulk inserts wrote times as queries
compare them had "+00:00" text times, so the list's cursor never matched them and they
came back at the top of every next page

Revision ID: 0004
Revises: 0003
"""

from alembic import op

from crm_common.migrations import normalize_sqlite_times

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    normalize_sqlite_times(op, "customers", ("created_at", "updated_at"))


def downgrade():
    """The rewritten times are the same moments: nothing to undo."""
