"""The interactions service's tables; no other service reads them."""

from datetime import datetime

from sqlalchemy import Index, Integer, SmallInteger, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from crm_common.customer_refs import CustomerFateMixin
from crm_common.db import UTCDateTime, make_base
from crm_common.dead_letters import DeadLetterMixin
from crm_common.inbox import AppliedEventMixin
from crm_common.outbox import OutboxMixin

Base = make_base()


class Interaction(Base):
    """A call, email, meeting, social message or note with a customer."""

    __tablename__ = "interactions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36))
    deal_id: Mapped[str | None] = mapped_column(String(36))
    channel: Mapped[str] = mapped_column(String(16))
    direction: Mapped[str | None] = mapped_column(String(8))
    # Free text: erasing the customer empties it.
    subject: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(String(200))
    owner: Mapped[str | None] = mapped_column(String(100))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    logged_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        # Lists and timelines: newest first, per customer, deal or owner.
        Index("ix_interactions_customer_id_occurred_at", "customer_id", "occurred_at", "id"),
        Index("ix_interactions_deal_id_occurred_at", "deal_id", "occurred_at", "id"),
        Index("ix_interactions_occurred_at_id", "occurred_at", "id"),
    )


class Feedback(Base):
    __tablename__ = "feedback"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(16))
    # The ticket a complaint opened.
    ticket_id: Mapped[str | None] = mapped_column(String(36))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_by: Mapped[str | None] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        Index("ix_feedback_customer_id_received_at", "customer_id", "received_at", "id"),
    )


class Ticket(Base):
    """A service request and its workflow; `version` is the sequence of its latest event."""

    __tablename__ = "tickets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36))
    feedback_id: Mapped[str | None] = mapped_column(String(36))
    subject: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[str] = mapped_column(String(8))
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    assignee: Mapped[str | None] = mapped_column(String(100))
    opened_by: Mapped[str | None] = mapped_column(String(100))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(100))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reopened_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The SLA clock: targets set at open, each breach recorded once.
    response_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolution_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    response_breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution_breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when the ticket is resolved without an answer yet; cleared by the answer.
    survey_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    satisfaction_score: Mapped[int | None] = mapped_column(SmallInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        Index("ix_tickets_customer_id_opened_at", "customer_id", "opened_at", "id"),
        Index("ix_tickets_status_opened_at", "status", "opened_at", "id"),
        Index("ix_tickets_assignee_opened_at", "assignee", "opened_at", "id"),
        Index("ix_tickets_opened_at_id", "opened_at", "id"),
        # The SLA timer looks only at tickets still running against a target.
        Index(
            "ix_tickets_response_due_at",
            "response_due_at",
            sqlite_where=text("first_responded_at IS NULL AND response_breached_at IS NULL"),
            postgresql_where=text("first_responded_at IS NULL AND response_breached_at IS NULL"),
        ),
        Index(
            "ix_tickets_resolution_due_at",
            "resolution_due_at",
            sqlite_where=text("resolved_at IS NULL AND resolution_breached_at IS NULL"),
            postgresql_where=text("resolved_at IS NULL AND resolution_breached_at IS NULL"),
        ),
    )


class TicketStep(Base):
    """One step of a ticket's history: who moved it from which status to which, and when."""

    __tablename__ = "ticket_steps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(String(36), index=True)
    step: Mapped[str] = mapped_column(String(16))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str | None] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(Text)


class Satisfaction(Base):
    """A customer's 1-5 answer about one resolved ticket: one per ticket."""

    __tablename__ = "satisfaction"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    ticket_id: Mapped[str] = mapped_column(String(36), unique=True)
    customer_id: Mapped[str] = mapped_column(String(36))
    score: Mapped[int] = mapped_column(SmallInteger)
    comment: Mapped[str | None] = mapped_column(Text)
    # Who handled the ticket and where it came in, as they were when answered.
    agent: Mapped[str | None] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(16))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[str | None] = mapped_column(String(100))

    __table_args__ = (
        Index("ix_satisfaction_customer_id_recorded_at", "customer_id", "recorded_at", "id"),
    )


class CustomerFate(CustomerFateMixin, Base):
    pass


class OutboxEvent(OutboxMixin, Base):
    pass


class AppliedEvent(AppliedEventMixin, Base):
    pass


class DeadLetter(DeadLetterMixin, Base):
    """Events this service's handlers could not apply (crm_common.dead_letters)."""
