"""The pipeline service's tables; no other service reads them."""

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from crm_common.customer_refs import CustomerFateMixin
from crm_common.db import UTCDateTime, make_base
from crm_common.dead_letters import DeadLetterMixin
from crm_common.inbox import AppliedEventMixin
from crm_common.outbox import OutboxMixin

Base = make_base()


class Pipeline(Base):
    __tablename__ = "pipelines"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer)

    __mapper_args__ = {"version_id_col": version}


class Stage(Base):
    """One stage of a pipeline. Its id never changes: renames and moves keep its history.

    `kind` is open, won or lost. A stage taken out of its pipeline is archived
    (`position` None), never deleted, since history rows point at it.
    """

    __tablename__ = "stages"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    pipeline_id: Mapped[str] = mapped_column(ForeignKey("pipelines.id"), index=True)
    name: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(8))
    # The win probability in basis points (0.25 is 2500): exact on every database.
    probability_bp: Mapped[int] = mapped_column(Integer)
    position: Mapped[int | None] = mapped_column(Integer)


class Deal(Base):
    __tablename__ = "deals"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36), index=True)
    pipeline_id: Mapped[str] = mapped_column(ForeignKey("pipelines.id"))
    stage_id: Mapped[str] = mapped_column(ForeignKey("stages.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    owner: Mapped[str | None] = mapped_column(String(100), index=True)
    expected_close_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(8), index=True)
    lost_reason: Mapped[str | None] = mapped_column(String(500))
    # When the deal entered its current stage: the start of its dwell time there.
    stage_entered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str | None] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The sequence of the deal's latest event; guards concurrent writes too.
    version: Mapped[int] = mapped_column(Integer)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (Index("ix_deals_created_at_id", "created_at", "id"),)


class StageChange(Base):
    """A deal's history: created, moved, won, lost or reopened; who did it and when.

    `dwell_seconds` is the time the deal spent in `from_stage_id` before this step.
    """

    __tablename__ = "stage_changes"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    deal_id: Mapped[str] = mapped_column(ForeignKey("deals.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    from_stage_id: Mapped[str | None] = mapped_column(ForeignKey("stages.id"))
    to_stage_id: Mapped[str] = mapped_column(ForeignKey("stages.id"))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    changed_by: Mapped[str | None] = mapped_column(String(100))
    dwell_seconds: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(String(500))


class CustomerFate(CustomerFateMixin, Base):
    pass


class OutboxEvent(OutboxMixin, Base):
    pass


class AppliedEvent(AppliedEventMixin, Base):
    pass


class DeadLetter(DeadLetterMixin, Base):
    """Events this service's handlers could not apply (crm_common.dead_letters)."""
