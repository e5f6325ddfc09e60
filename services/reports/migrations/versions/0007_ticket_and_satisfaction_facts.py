"""ticket and satisfaction facts

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

import crm_common.db

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "satisfaction_facts",
        sa.Column("ticket_id", sa.String(length=36), nullable=False),
        sa.Column("satisfaction_id", sa.String(length=36), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("agent", sa.String(length=100), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("recorded_at", crm_common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.PrimaryKeyConstraint("ticket_id", name=op.f("pk_satisfaction_facts")),
    )
    with op.batch_alter_table("satisfaction_facts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_satisfaction_facts_recorded_at"), ["recorded_at"], unique=False
        )

    op.create_table(
        "ticket_facts",
        sa.Column("ticket_id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("opened_at", crm_common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("priority", sa.String(length=8), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("assignee", sa.String(length=100), nullable=True),
        sa.Column("assignee_sequence", sa.Integer(), nullable=False),
        sa.Column("first_response_seconds", sa.Float(), nullable=True),
        sa.Column("resolved", sa.Boolean(), nullable=False),
        sa.Column("resolved_sequence", sa.Integer(), nullable=False),
        sa.Column("resolution_seconds", sa.Float(), nullable=True),
        sa.Column("resolution_sequence", sa.Integer(), nullable=False),
        sa.Column("response_breached", sa.Boolean(), nullable=False),
        sa.Column("resolution_breached", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("ticket_id", name=op.f("pk_ticket_facts")),
    )
    with op.batch_alter_table("ticket_facts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ticket_facts_opened_at"), ["opened_at"], unique=False)


def downgrade():
    with op.batch_alter_table("ticket_facts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_facts_opened_at"))

    op.drop_table("ticket_facts")
    with op.batch_alter_table("satisfaction_facts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_satisfaction_facts_recorded_at"))

    op.drop_table("satisfaction_facts")
