"""pipelines, stages, deals, stage history; the default pipeline

Revision ID: 0002
Revises: 0001

The default pipeline exists from the first start: this revision writes it,
and its pipeline_created event to the outbox, for the relay to publish.
Its contents are frozen here; later changes to the pipeline rules do not
rewrite history.
"""

import uuid

import sqlalchemy as sa
from alembic import op

import crm_common.db
from crm_common.envelope import make_envelope, utcnow

DEFAULT_PIPELINE_ID = "5f1b8c2e-0d6a-4c59-9a51-7d0e3c1f2a01"
DEFAULT_STAGES = (
    ("6a0f1e3b-2c4d-4e5f-8a9b-0c1d2e3f4a01", "lead", "open", 1000),
    ("6a0f1e3b-2c4d-4e5f-8a9b-0c1d2e3f4a02", "qualified", "open", 2500),
    ("6a0f1e3b-2c4d-4e5f-8a9b-0c1d2e3f4a03", "proposal", "open", 5000),
    ("6a0f1e3b-2c4d-4e5f-8a9b-0c1d2e3f4a04", "negotiation", "open", 7500),
    ("6a0f1e3b-2c4d-4e5f-8a9b-0c1d2e3f4a05", "won", "won", 10000),
    ("6a0f1e3b-2c4d-4e5f-8a9b-0c1d2e3f4a06", "lost", "lost", 0),
)


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
        "pipelines",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("created_at", crm_common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipelines")),
        sa.UniqueConstraint("name", name=op.f("uq_pipelines_name")),
    )
    op.create_table(
        "stages",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("pipeline_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("probability_bp", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["pipeline_id"], ["pipelines.id"], name=op.f("fk_stages_pipeline_id_pipelines")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stages")),
    )
    with op.batch_alter_table("stages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stages_pipeline_id"), ["pipeline_id"], unique=False)

    op.create_table(
        "deals",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("pipeline_id", sa.String(length=36), nullable=False),
        sa.Column("stage_id", sa.String(length=36), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=True),
        sa.Column("expected_close_date", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("lost_reason", sa.String(length=500), nullable=True),
        sa.Column("stage_entered_at", crm_common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", crm_common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", crm_common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=True),
        sa.Column("updated_at", crm_common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pipeline_id"], ["pipelines.id"], name=op.f("fk_deals_pipeline_id_pipelines")
        ),
        sa.ForeignKeyConstraint(["stage_id"], ["stages.id"], name=op.f("fk_deals_stage_id_stages")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deals")),
    )
    with op.batch_alter_table("deals", schema=None) as batch_op:
        batch_op.create_index("ix_deals_created_at_id", ["created_at", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_deals_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_deals_owner"), ["owner"], unique=False)
        batch_op.create_index(batch_op.f("ix_deals_stage_id"), ["stage_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_deals_status"), ["status"], unique=False)

    op.create_table(
        "stage_changes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("deal_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("from_stage_id", sa.String(length=36), nullable=True),
        sa.Column("to_stage_id", sa.String(length=36), nullable=False),
        sa.Column("changed_at", crm_common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("changed_by", sa.String(length=100), nullable=True),
        sa.Column("dwell_seconds", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["deal_id"], ["deals.id"], name=op.f("fk_stage_changes_deal_id_deals")
        ),
        sa.ForeignKeyConstraint(
            ["from_stage_id"], ["stages.id"], name=op.f("fk_stage_changes_from_stage_id_stages")
        ),
        sa.ForeignKeyConstraint(
            ["to_stage_id"], ["stages.id"], name=op.f("fk_stage_changes_to_stage_id_stages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stage_changes")),
    )
    with op.batch_alter_table("stage_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stage_changes_deal_id"), ["deal_id"], unique=False)

    add_default_pipeline()


def add_default_pipeline():
    now = utcnow()
    pipelines = sa.table(
        "pipelines",
        sa.column("id"),
        sa.column("name"),
        sa.column("is_default"),
        sa.column("created_at", crm_common.db.UTCDateTime),
        sa.column("version"),
    )
    stages = sa.table(
        "stages",
        sa.column("id"),
        sa.column("pipeline_id"),
        sa.column("name"),
        sa.column("kind"),
        sa.column("probability_bp"),
        sa.column("position"),
    )
    outbox = sa.table(
        "outbox",
        sa.column("event_id"),
        sa.column("event_type"),
        sa.column("aggregate_id"),
        sa.column("sequence"),
        sa.column("occurred_at", crm_common.db.UTCDateTime),
        sa.column("body", sa.JSON),
    )
    op.bulk_insert(
        pipelines,
        [
            {
                "id": DEFAULT_PIPELINE_ID,
                "name": "Sales",
                "is_default": True,
                "created_at": now,
                "version": 1,
            }
        ],
    )
    rows = [
        {
            "id": stage_id,
            "pipeline_id": DEFAULT_PIPELINE_ID,
            "name": name,
            "kind": kind,
            "probability_bp": points,
            "position": position,
        }
        for position, (stage_id, name, kind, points) in enumerate(DEFAULT_STAGES)
    ]
    op.bulk_insert(stages, rows)
    event_id = str(uuid.uuid4())
    body = make_envelope(
        event_type="pipeline_created",
        producer="pipeline",
        aggregate_id=DEFAULT_PIPELINE_ID,
        sequence=1,
        occurred_at=now,
        event_id=event_id,
        data={
            "pipeline_id": DEFAULT_PIPELINE_ID,
            "name": "Sales",
            "is_default": True,
            "stages": [
                {
                    "stage_id": row["id"],
                    "name": row["name"],
                    "kind": row["kind"],
                    "probability": row["probability_bp"] / 10000,
                    "position": row["position"],
                }
                for row in rows
            ],
        },
    )
    op.bulk_insert(
        outbox,
        [
            {
                "event_id": event_id,
                "event_type": "pipeline_created",
                "aggregate_id": DEFAULT_PIPELINE_ID,
                "sequence": 1,
                "occurred_at": now,
                "body": body,
            }
        ],
    )


def downgrade():
    with op.batch_alter_table("stage_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stage_changes_deal_id"))

    op.drop_table("stage_changes")
    with op.batch_alter_table("deals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deals_status"))
        batch_op.drop_index(batch_op.f("ix_deals_stage_id"))
        batch_op.drop_index(batch_op.f("ix_deals_owner"))
        batch_op.drop_index(batch_op.f("ix_deals_customer_id"))
        batch_op.drop_index("ix_deals_created_at_id")

    op.drop_table("deals")
    with op.batch_alter_table("stages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stages_pipeline_id"))

    op.drop_table("stages")
    op.drop_table("pipelines")
    with op.batch_alter_table("customer_fates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_fates_merged_into"))

    op.drop_table("customer_fates")
    op.drop_table("applied_events")
