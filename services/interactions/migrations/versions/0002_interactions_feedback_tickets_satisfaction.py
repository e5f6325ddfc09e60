"""interactions, feedback, tickets, satisfaction, customer fates

Revision ID: 0002
Revises: 0001
Created: 2026-11-23 19:17:04.538233
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
        "applied_events",
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("producer", sa.String(length=32), nullable=False),
        sa.Column("aggregate_id", sa.String(length=64), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("applied_at", crm_common.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_applied_events")),
    )
    op.create_table(
        "customer_fates",
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("merged_into", sa.String(length=36), nullable=True),
        sa.Column("erased_at", crm_common.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer_fates")),
    )
    with op.batch_alter_table("customer_fates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customer_fates_merged_into"), ["merged_into"], unique=False
        )

    op.create_table(
        "feedback",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("ticket_id", sa.String(length=36), nullable=True),
        sa.Column("received_at", crm_common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_by", sa.String(length=100), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
    )
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.create_index(
            "ix_feedback_customer_id_received_at",
            ["customer_id", "received_at", "id"],
            unique=False,
        )

    op.create_table(
        "interactions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("deal_id", sa.String(length=36), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=True),
        sa.Column("subject", sa.String(length=200), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("outcome", sa.String(length=200), nullable=True),
        sa.Column("owner", sa.String(length=100), nullable=True),
        sa.Column("occurred_at", crm_common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("logged_by", sa.String(length=100), nullable=True),
        sa.Column("created_at", crm_common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interactions")),
    )
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_interactions_customer_id_occurred_at",
            ["customer_id", "occurred_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_interactions_deal_id_occurred_at", ["deal_id", "occurred_at", "id"], unique=False
        )
        batch_op.create_index("ix_interactions_occurred_at_id", ["occurred_at", "id"], unique=False)

    op.create_table(
        "satisfaction",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("ticket_id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("score", sa.SmallInteger(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("agent", sa.String(length=100), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("recorded_at", crm_common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_satisfaction")),
        sa.UniqueConstraint("ticket_id", name=op.f("uq_satisfaction_ticket_id")),
    )
    with op.batch_alter_table("satisfaction", schema=None) as batch_op:
        batch_op.create_index(
            "ix_satisfaction_customer_id_recorded_at",
            ["customer_id", "recorded_at", "id"],
            unique=False,
        )

    op.create_table(
        "ticket_steps",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.String(length=36), nullable=False),
        sa.Column("step", sa.String(length=16), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=True),
        sa.Column("at", crm_common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_steps")),
    )
    with op.batch_alter_table("ticket_steps", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ticket_steps_ticket_id"), ["ticket_id"], unique=False)

    op.create_table(
        "tickets",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("feedback_id", sa.String(length=36), nullable=True),
        sa.Column("subject", sa.String(length=200), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("priority", sa.String(length=8), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("assignee", sa.String(length=100), nullable=True),
        sa.Column("opened_by", sa.String(length=100), nullable=True),
        sa.Column("opened_at", crm_common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("assigned_at", crm_common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("first_responded_at", crm_common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", crm_common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(length=100), nullable=True),
        sa.Column("closed_at", crm_common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reopened_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("response_due_at", crm_common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolution_due_at", crm_common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("response_breached_at", crm_common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "resolution_breached_at", crm_common.db.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("survey_due_at", crm_common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("satisfaction_score", sa.SmallInteger(), nullable=True),
        sa.Column("updated_at", crm_common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tickets")),
    )
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tickets_assignee_opened_at", ["assignee", "opened_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_tickets_customer_id_opened_at", ["customer_id", "opened_at", "id"], unique=False
        )
        batch_op.create_index("ix_tickets_opened_at_id", ["opened_at", "id"], unique=False)
        batch_op.create_index(
            "ix_tickets_resolution_due_at",
            ["resolution_due_at"],
            unique=False,
            sqlite_where=sa.text("resolved_at IS NULL AND resolution_breached_at IS NULL"),
            postgresql_where=sa.text("resolved_at IS NULL AND resolution_breached_at IS NULL"),
        )
        batch_op.create_index(
            "ix_tickets_response_due_at",
            ["response_due_at"],
            unique=False,
            sqlite_where=sa.text("first_responded_at IS NULL AND response_breached_at IS NULL"),
            postgresql_where=sa.text("first_responded_at IS NULL AND response_breached_at IS NULL"),
        )
        batch_op.create_index(
            "ix_tickets_status_opened_at", ["status", "opened_at", "id"], unique=False
        )


def downgrade():
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_status_opened_at")
        batch_op.drop_index(
            "ix_tickets_response_due_at",
            sqlite_where=sa.text("first_responded_at IS NULL AND response_breached_at IS NULL"),
            postgresql_where=sa.text("first_responded_at IS NULL AND response_breached_at IS NULL"),
        )
        batch_op.drop_index(
            "ix_tickets_resolution_due_at",
            sqlite_where=sa.text("resolved_at IS NULL AND resolution_breached_at IS NULL"),
            postgresql_where=sa.text("resolved_at IS NULL AND resolution_breached_at IS NULL"),
        )
        batch_op.drop_index("ix_tickets_opened_at_id")
        batch_op.drop_index("ix_tickets_customer_id_opened_at")
        batch_op.drop_index("ix_tickets_assignee_opened_at")

    op.drop_table("tickets")
    with op.batch_alter_table("ticket_steps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_steps_ticket_id"))

    op.drop_table("ticket_steps")
    with op.batch_alter_table("satisfaction", schema=None) as batch_op:
        batch_op.drop_index("ix_satisfaction_customer_id_recorded_at")

    op.drop_table("satisfaction")
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.drop_index("ix_interactions_occurred_at_id")
        batch_op.drop_index("ix_interactions_deal_id_occurred_at")
        batch_op.drop_index("ix_interactions_customer_id_occurred_at")

    op.drop_table("interactions")
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.drop_index("ix_feedback_customer_id_received_at")

    op.drop_table("feedback")
    with op.batch_alter_table("customer_fates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_fates_merged_into"))

    op.drop_table("customer_fates")
    op.drop_table("applied_events")
