"""The customers service's tables; no other service reads them."""

from datetime import datetime

from sqlalchemy import JSON, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from crm_common.db import UTCDateTime, make_base
from crm_common.dead_letters import DeadLetterMixin
from crm_common.inbox import AppliedEventMixin
from crm_common.outbox import OutboxMixin

Base = make_base()

# Search terms are compared by prefix as byte strings: PostgreSQL's "C"
# collation makes a range scan on the index do that (SQLite does by default).
TermText = String(64).with_variant(String(64, collation="C"), "postgresql")


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    company: Mapped[str | None] = mapped_column(String(200))
    owner: Mapped[str | None] = mapped_column(String(100), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    tags: Mapped[list] = mapped_column(JSON)
    attributes: Mapped[dict] = mapped_column(JSON)
    # Set by the reports service's segment_changed events.
    segment: Mapped[str | None] = mapped_column(String(32), index=True)
    segment_sequence: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Duplicate detection keys (see domain.company_key, name_block).
    company_key: Mapped[str | None] = mapped_column(String(200))
    name_block: Mapped[str | None] = mapped_column(String(200), index=True)
    # A merged customer points at its survivor; an erased one keeps no personal data.
    merged_into: Mapped[str | None] = mapped_column(String(36))
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The sequence of this customer's latest event; guards concurrent writes too.
    version: Mapped[int] = mapped_column(Integer)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        Index("ix_customers_created_at_id", "created_at", "id"),
        # Partial: "merged_into IS NULL" (every active customer) must never look selective.
        Index(
            "ix_customers_merged_into",
            "merged_into",
            sqlite_where=text("merged_into IS NOT NULL"),
            postgresql_where=text("merged_into IS NOT NULL"),
        ),
    )


class CustomerTag(Base):
    __tablename__ = "customer_tags"
    __table_args__ = {"sqlite_with_rowid": False}

    customer_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tag: Mapped[str] = mapped_column(String(50), primary_key=True, index=True)


class CustomerTerm(Base):
    """One search word of one active customer."""

    __tablename__ = "customer_terms"
    # On SQLite the table is its primary-key index: half the writes per row.
    # (No foreign key: checking one per row would double an import's cost;
    # the service writes these rows only with their customer.)
    __table_args__ = {"sqlite_with_rowid": False}

    term: Mapped[str] = mapped_column(TermText, primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36), primary_key=True)


class CustomerMerge(Base):
    """One customer merged into another: who, when, and what it was before."""

    __tablename__ = "customer_merges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    survivor_id: Mapped[str] = mapped_column(String(36), index=True)
    merged_id: Mapped[str] = mapped_column(String(36), index=True)
    merged_at: Mapped[datetime] = mapped_column(UTCDateTime)
    merged_by: Mapped[str | None] = mapped_column(String(100))
    snapshot: Mapped[dict] = mapped_column(JSON)


class OutboxEvent(OutboxMixin, Base):
    pass


class AppliedEvent(AppliedEventMixin, Base):
    pass


class DeadLetter(DeadLetterMixin, Base):
    """Events this service's handlers could not apply (crm_common.dead_letters)."""
