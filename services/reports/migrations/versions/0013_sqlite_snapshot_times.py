"""sqlite snapshot times: funnel snapshot rows kept before bulk inserts wrote times as
queries compare them had "+00:00" text moments, so a funnel as of a past day found its
snapshot but none of its rows, and answered zeros

Revision ID: 0013
Revises: 0012
"""

from alembic import op

from crm_common.migrations import normalize_sqlite_times

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    normalize_sqlite_times(op, "funnel_snapshot_totals", ("moment",))


def downgrade():
    """The rewritten times are the same moments: nothing to undo."""
