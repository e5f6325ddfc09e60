"""The reports service's views: built only from events, never from other databases."""

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm_common.db import UTCDateTime, make_base
from crm_common.dead_letters import DeadLetterMixin
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


class PipelineFact(Base):
    """A pipeline as its newest pipeline_created / pipeline_changed event told it."""

    __tablename__ = "pipeline_facts"

    pipeline_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    sequence: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    is_default: Mapped[bool] = mapped_column(Boolean)


class StageFact(Base):
    """A stage of a pipeline; `position` None once it left the pipeline (its history stays)."""

    __tablename__ = "stage_facts"

    stage_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    pipeline_id: Mapped[str] = mapped_column(String(36), index=True)
    name: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(8))
    position: Mapped[int | None] = mapped_column(Integer)
    # Its win probability in basis points, as the newest pipeline event told it: the
    # forecast weighs open deals by it (null until a pipeline event said).
    probability_bp: Mapped[int | None] = mapped_column(Integer)


class DealMove(Base):
    """One deal event: where the deal went (and came from), and its state after it."""

    __tablename__ = "deal_moves"

    deal_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    sequence: Mapped[int] = mapped_column(Integer, primary_key=True)
    pipeline_id: Mapped[str] = mapped_column(String(36))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(16))
    from_stage_id: Mapped[str | None] = mapped_column(String(36))
    to_stage_id: Mapped[str | None] = mapped_column(String(36))
    dwell_seconds: Mapped[int | None] = mapped_column(Integer)
    stage_id: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(8))
    owner: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # For segments as of a past moment: whose deal, and its amount then.
    customer_id: Mapped[str | None] = mapped_column(String(36))
    amount_cents: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_deal_moves_pipeline_id_at", "pipeline_id", "at"),)


class FunnelCounts:
    """The counters of the funnel (see funnel.COUNTS)."""

    entered: Mapped[int] = mapped_column(Integer)
    converted: Mapped[int] = mapped_column(Integer)
    lost_here: Mapped[int] = mapped_column(Integer)
    dwell_seconds: Mapped[int] = mapped_column(BigInteger)
    dwell_count: Mapped[int] = mapped_column(Integer)
    current: Mapped[int] = mapped_column(Integer)


class DealStageCounts(FunnelCounts, Base):
    """What one deal adds to one stage of the funnel (see funnel.deal_counts)."""

    __tablename__ = "deal_stage_counts"

    deal_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    stage_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    pipeline_id: Mapped[str] = mapped_column(String(36), index=True)
    owner: Mapped[str] = mapped_column(String(100))
    cohort_day: Mapped[str] = mapped_column(String(10))


class FunnelTotals(FunnelCounts, Base):
    """The funnel's sums per pipeline stage, owner and day the deals were created."""

    __tablename__ = "funnel_totals"

    pipeline_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    stage_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner: Mapped[str] = mapped_column(String(100), primary_key=True)
    cohort_day: Mapped[str] = mapped_column(String(10), primary_key=True)


class FunnelOwnerTotals(FunnelCounts, Base):
    """The funnel's sums per pipeline stage and owner: what a funnel read without days
    sums (a few rows per stage, where funnel_totals has one per day deals were created)."""

    __tablename__ = "funnel_owner_totals"

    pipeline_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    stage_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner: Mapped[str] = mapped_column(String(100), primary_key=True)


class InteractionFact(Base):
    """One logged interaction: engagement for the segments."""

    __tablename__ = "interaction_facts"

    interaction_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36), index=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    channel: Mapped[str] = mapped_column(String(16))


class CustomerSegment(Base):
    """A customer's segment and the metrics it came from, as last computed.

    `sequence` numbers this customer's segment_changed events.
    """

    __tablename__ = "customer_segments"

    customer_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    segment: Mapped[str] = mapped_column(String(16), index=True)
    sequence: Mapped[int] = mapped_column(Integer)
    recency_days: Mapped[int | None] = mapped_column(Integer)
    frequency: Mapped[int] = mapped_column(Integer)
    monetary_cents: Mapped[int] = mapped_column(BigInteger)
    engagement: Mapped[int] = mapped_column(Integer)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SegmentTotals(Base):
    """Per segment, its customers and the sum of their monetary value, as last computed:
    what the segments report reads instead of every customer's segment."""

    __tablename__ = "segment_totals"

    segment: Mapped[str] = mapped_column(String(16), primary_key=True)
    customers: Mapped[int] = mapped_column(Integer)
    monetary_cents: Mapped[int] = mapped_column(BigInteger)


class TicketFact(Base):
    """What the service desk view knows of one ticket, whatever order its events arrived in.

    Fields that later steps change (assignee, resolved) remember the sequence
    of the event that set them, so an older event arriving late never
    overwrites a newer value. Counted once its ticket_opened arrived.
    """

    __tablename__ = "ticket_facts"

    ticket_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36))
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    priority: Mapped[str] = mapped_column(String(8))
    # Null until an event that names it arrives (a breach does not).
    channel: Mapped[str | None] = mapped_column(String(16))
    assignee: Mapped[str | None] = mapped_column(String(100))
    assignee_sequence: Mapped[int] = mapped_column(Integer)
    first_response_seconds: Mapped[float | None] = mapped_column(Float)
    # Resolved (or closed) as of its newest resolve, close or reopen.
    resolved: Mapped[bool] = mapped_column(Boolean)
    resolved_sequence: Mapped[int] = mapped_column(Integer)
    # Open to its newest resolution.
    resolution_seconds: Mapped[float | None] = mapped_column(Float)
    resolution_sequence: Mapped[int] = mapped_column(Integer)
    response_breached: Mapped[bool] = mapped_column(Boolean)
    resolution_breached: Mapped[bool] = mapped_column(Boolean)


class SatisfactionFact(Base):
    """The one satisfaction answer of a ticket."""

    __tablename__ = "satisfaction_facts"

    ticket_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    satisfaction_id: Mapped[str] = mapped_column(String(36))
    score: Mapped[int] = mapped_column(Integer)
    agent: Mapped[str | None] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(16))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # YYYY-MM of recorded_at (UTC), for grouping by month.
    month: Mapped[str] = mapped_column(String(7))


class ViewState(Base):
    """How fresh a view is: the time of the newest event applied to it."""

    __tablename__ = "view_state"

    view: Mapped[str] = mapped_column(String(64), primary_key=True)
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    events_applied: Mapped[int] = mapped_column(Integer)


class Rebuild(Base):
    """One rebuild of the views from the producers' logs (see rebuild.py)."""

    __tablename__ = "rebuilds"

    rebuild_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # requested, running, done
    status: Mapped[str] = mapped_column(String(10), index=True)
    requested_by: Mapped[str | None] = mapped_column(String(100))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the instance carrying it out last showed progress.
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # JSON {producer: cursor in its log}: how far the replay has come.
    cursors: Mapped[str] = mapped_column(Text)
    events_read: Mapped[int] = mapped_column(Integer)
    events_applied: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)


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


class FunnelSnapshot(Base):
    """The funnel of a pipeline as its moves stood at `moment` (a UTC midnight), kept so
    that an answer as of a past moment starts there (see funnel_snapshots.py)."""

    __tablename__ = "funnel_snapshots"

    pipeline_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    moment: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    # The stage order it was counted with ("converted" depends on it): another is stale.
    stage_order: Mapped[str] = mapped_column(Text)
    used_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class FunnelSnapshotTotals(FunnelCounts, Base):
    """A snapshot's sums per stage, owner and day the deals were created (as FunnelTotals)."""

    __tablename__ = "funnel_snapshot_totals"

    pipeline_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    moment: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    stage_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner: Mapped[str] = mapped_column(String(100), primary_key=True)
    cohort_day: Mapped[str] = mapped_column(String(10), primary_key=True)


class DeadLetter(DeadLetterMixin, Base):
    """Events this service's handlers could not apply (crm_common.dead_letters)."""
