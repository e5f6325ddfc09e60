"""The reports service's views: built only from events, never from other databases."""

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_common.db import UTCDateTime, make_base
from crm_common.inbox import AppliedEventMixin
from crm_common.outbox import OutboxMixin

Base = make_base()


class CustomerFact(Base):
    """What reports know of one customer, whatever order its events arrived in.

    Each field remembers the sequence of the event that set it, so an older
    event arriving late never overwrites a newer value. A fact may exist
    before its customer_created arrives (status still unknown): it is not
    counted until then.
    """

    __tablename__ = "customer_facts"

    customer_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    status: Mapped[str | None] = mapped_column(String(16), index=True)
    status_sequence: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    owner: Mapped[str | None] = mapped_column(String(100), index=True)
    owner_sequence: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when the customer was merged into another: it no longer counts.
    merged_into: Mapped[str | None] = mapped_column(String(36), index=True)
    # Highest `sequence` applied for this customer.
    sequence: Mapped[int] = mapped_column(Integer)


class DealFact(Base):
    """The latest state of one deal, as its newest event (highest `sequence`) told it."""

    __tablename__ = "deal_facts"

    deal_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    sequence: Mapped[int] = mapped_column(Integer)
    customer_id: Mapped[str] = mapped_column(String(36), index=True)
    pipeline_id: Mapped[str] = mapped_column(String(36))
    stage_id: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(8))
    owner: Mapped[str | None] = mapped_column(String(100))
    currency: Mapped[str] = mapped_column(String(3))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    # The stage's win probability in basis points (0.25 is 2500).
    probability_bp: Mapped[int] = mapped_column(Integer)
    expected_close_date: Mapped[str | None] = mapped_column(String(10))
    closed_at: Mapped[str | None] = mapped_column(String(40))


class SalesPerformance(Base):
    """Closed deals per owner, month closed (YYYY-MM) and currency."""

    __tablename__ = "sales_performance"

    owner: Mapped[str] = mapped_column(String(100), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    won: Mapped[int] = mapped_column(Integer)
    lost: Mapped[int] = mapped_column(Integer)
    won_cents: Mapped[int] = mapped_column(BigInteger)


class SalesForecast(Base):
    """Open deals per owner, expected close month (or `unscheduled`) and currency."""

    __tablename__ = "sales_forecast"

    owner: Mapped[str] = mapped_column(String(100), primary_key=True)
    month: Mapped[str] = mapped_column(String(11), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    deals: Mapped[int] = mapped_column(Integer)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    weighted_cents: Mapped[int] = mapped_column(BigInteger)


class ViewState(Base):
    """How fresh a view is: the time of the newest event applied to it."""

    __tablename__ = "view_state"

    view: Mapped[str] = mapped_column(String(64), primary_key=True)
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    events_applied: Mapped[int] = mapped_column(Integer)


class ProducerCursor(Base):
    """How far reports have read each producer's event log (`events_since`)."""

    __tablename__ = "producer_cursors"

    producer: Mapped[str] = mapped_column(String(32), primary_key=True)
    cursor: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OutboxEvent(OutboxMixin, Base):
    pass


class AppliedEvent(AppliedEventMixin, Base):
    pass
