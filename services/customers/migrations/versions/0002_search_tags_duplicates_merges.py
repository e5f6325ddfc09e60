"""search, tags, duplicates, merges, segments

Revision ID: 0002
Revises: 0001
Created: 2026-11-23 17:57:02.088040
"""

import sqlalchemy as sa
from alembic import op

import crm_common.db
from services.customers import domain

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
        "customer_merges",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("survivor_id", sa.String(length=36), nullable=False),
        sa.Column("merged_id", sa.String(length=36), nullable=False),
        sa.Column("merged_at", crm_common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("merged_by", sa.String(length=100), nullable=True),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_merges")),
    )
    with op.batch_alter_table("customer_merges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customer_merges_merged_id"), ["merged_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_customer_merges_survivor_id"), ["survivor_id"], unique=False
        )

    op.create_table(
        "customer_tags",
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("tag", sa.String(length=50), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "tag", name=op.f("pk_customer_tags")),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("customer_tags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customer_tags_tag"), ["tag"], unique=False)

    op.create_table(
        "customer_terms",
        sa.Column(
            "term",
            sa.String(length=64).with_variant(sa.String(length=64, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("term", "customer_id", name=op.f("pk_customer_terms")),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("segment", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("segment_sequence", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("company_key", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("name_block", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("merged_into", sa.String(length=36), nullable=True))
        batch_op.add_column(
            sa.Column("erased_at", crm_common.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.drop_index(batch_op.f("ix_customers_created_at"))
        batch_op.create_index("ix_customers_created_at_id", ["created_at", "id"], unique=False)
        batch_op.create_index(
            "ix_customers_merged_into",
            ["merged_into"],
            unique=False,
            sqlite_where=sa.text("merged_into IS NOT NULL"),
            postgresql_where=sa.text("merged_into IS NOT NULL"),
        )
        batch_op.create_index(batch_op.f("ix_customers_name_block"), ["name_block"], unique=False)
        batch_op.create_index(batch_op.f("ix_customers_segment"), ["segment"], unique=False)

    backfill_keys_and_index()


def backfill_keys_and_index():
    """Customers created before this revision get their duplicate keys, tags and search rows."""
    connection = op.get_bind()
    customers = sa.table(
        "customers",
        sa.column("id"),
        sa.column("name"),
        sa.column("email"),
        sa.column("phone"),
        sa.column("company"),
        sa.column("tags", sa.JSON),
        sa.column("company_key"),
        sa.column("name_block"),
    )
    rows = connection.execute(
        sa.select(
            customers.c.id,
            customers.c.name,
            customers.c.email,
            customers.c.phone,
            customers.c.company,
            customers.c.tags,
        )
    ).all()
    tags, terms = [], []
    for row in rows:
        connection.execute(
            customers.update()
            .where(customers.c.id == row.id)
            .values(
                company_key=domain.company_key(row.company),
                name_block=domain.name_block(row.name, row.company),
            )
        )
        tags.extend({"customer_id": row.id, "tag": tag} for tag in row.tags or [])
        terms.extend(
            {"customer_id": row.id, "term": term}
            for term in domain.search_terms(row.name, row.email, row.phone, row.company)
        )
    if tags:
        op.bulk_insert(sa.table("customer_tags", sa.column("customer_id"), sa.column("tag")), tags)
    if terms:
        op.bulk_insert(
            sa.table("customer_terms", sa.column("customer_id"), sa.column("term")), terms
        )


def downgrade():
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customers_segment"))
        batch_op.drop_index(batch_op.f("ix_customers_name_block"))
        batch_op.drop_index("ix_customers_merged_into")
        batch_op.drop_index("ix_customers_created_at_id")
        batch_op.create_index(batch_op.f("ix_customers_created_at"), ["created_at"], unique=False)
        batch_op.drop_column("erased_at")
        batch_op.drop_column("merged_into")
        batch_op.drop_column("name_block")
        batch_op.drop_column("company_key")
        batch_op.drop_column("segment_sequence")
        batch_op.drop_column("segment")

    op.drop_table("customer_terms")
    with op.batch_alter_table("customer_tags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_tags_tag"))

    op.drop_table("customer_tags")
    with op.batch_alter_table("customer_merges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_merges_survivor_id"))
        batch_op.drop_index(batch_op.f("ix_customer_merges_merged_id"))

    op.drop_table("customer_merges")
    op.drop_table("applied_events")
