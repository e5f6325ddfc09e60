"""Idempotent consumers: an event's effect is applied once, however often it arrives.

The consumer records the `event_id` in its own `applied_events` table in the
same transaction as the effect. A redelivered event finds its id there and
changes nothing; two instances racing on the same event are ordered by the
primary key, and the loser sees the winner's row and skips.
"""

import logging
from datetime import datetime

from nameko.extensions import DependencyProvider
from sqlalchemy import Integer, String
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from crm_common.db import UTCDateTime, find_database
from crm_common.envelope import InvalidEvent, load_envelope, utcnow

log = logging.getLogger(__name__)


class AppliedEventMixin:
    """Columns of a consumer's `applied_events` table; mix into its own Base."""

    __tablename__ = "applied_events"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(64))
    producer: Mapped[str] = mapped_column(String(32))
    aggregate_id: Mapped[str] = mapped_column(String(64))
    sequence: Mapped[int] = mapped_column(Integer)
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime)


def apply_once(session, model, envelope, effect):
    """Run `effect(session, envelope)` unless the event was applied before.

    Commits on success; returns False, with nothing changed, for a repeat.
    """
    session.add(
        model(
            event_id=str(envelope["event_id"]),
            event_type=envelope["event_type"],
            producer=envelope["producer"],
            aggregate_id=envelope["aggregate_id"],
            sequence=envelope["sequence"],
            applied_at=utcnow(),
        )
    )
    try:
        # Claim the id before doing anything else, so the only integrity
        # error possible here is "already applied".
        session.flush()
    except IntegrityError:
        session.rollback()
        return False
    effect(session, envelope)
    session.commit()
    return True


class Inbox(DependencyProvider):
    """Injects `apply(body, effect, data_schema)` for event handlers."""

    def __init__(self, model):
        self.model = model

    def setup(self):
        self.database = find_database(self.container)

    def get_dependency(self, worker_ctx):
        return self

    def apply(self, body, effect, data_schema=None):
        """Validate `body`, then apply `effect` once. Returns whether it applied.

        An invalid body is logged and dropped rather than raised: raising
        would send a message that can never succeed back to the queue forever.
        """
        try:
            envelope = load_envelope(body, data_schema)
        except InvalidEvent as exc:
            log.error("rejected invalid event: %s", exc, extra={"event_body": body})
            return False
        with self.database.session() as session:
            applied = apply_once(session, self.model, envelope, effect)
        log.info(
            "%s %s",
            "applied" if applied else "skipped repeated",
            envelope["event_type"],
            extra={"event_id": str(envelope["event_id"]), "aggregate_id": envelope["aggregate_id"]},
        )
        return applied
