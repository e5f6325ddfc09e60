"""Idempotent consumers: an event's effect is applied once, however often it arrives.

The consumer records the `event_id` in its own `applied_events` table in the
same transaction as the effect. A redelivered event finds its id there and
changes nothing; two instances racing on the same event are ordered by the
primary key, and the loser sees the winner's row and skips.
"""

import logging
import time
from datetime import datetime

import eventlet
import eventlet.event
import eventlet.queue
from nameko.extensions import DependencyProvider
from sqlalchemy import Integer, String, select
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.orm.exc import StaleDataError

from crm_common.db import UTCDateTime, find_database, insert_rows, plain_insert
from crm_common.envelope import InvalidEvent, load_envelope, utcnow

log = logging.getLogger(__name__)

# Failures worth another delivery: the database is away or busy, another
# instance won a race on a view row, or a versioned row changed between the
# effect's read and its write (the next delivery reads it again). Pausing
# first keeps a requeued event from spinning while the database is down.
RETRYABLE = (OperationalError, InterfaceError, IntegrityError, StaleDataError)
RETRY_PAUSE_SECONDS = 1


class AppliedEventMixin:
    """Columns of a consumer's `applied_events` table; mix into its own Base."""

    __tablename__ = "applied_events"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(64))
    producer: Mapped[str] = mapped_column(String(32))
    aggregate_id: Mapped[str] = mapped_column(String(64))
    sequence: Mapped[int] = mapped_column(Integer)
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime)


def applied_row(model, envelope):
    """The row that records `envelope` as applied."""
    return model(
        event_id=str(envelope["event_id"]),
        event_type=envelope["event_type"],
        producer=envelope["producer"],
        aggregate_id=envelope["aggregate_id"],
        sequence=envelope["sequence"],
        applied_at=utcnow(),
    )


def apply_once(session, model, envelope, effect):
    """Run `effect(session, envelope)` unless the event was applied before.

    Commits on success; returns False, with nothing changed, for a repeat.
    """
    session.add(applied_row(model, envelope))
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


def batched(apply_all):
    """The effect of one event, made of `apply_all(session, envelopes)`, the effect of many
    at once (a handful of statements for a whole batch): apply_many hands it every event
    of a batch together."""

    def apply_one(session, envelope):
        apply_all(session, [envelope])

    apply_one.apply_all = apply_all
    return apply_one


def apply_many(session, model, envelopes, effect_of):
    """Apply each of `envelopes` not applied before, in the session's transaction.

    `effect_of(envelope)` is the event's effect; the events of an effect made by
    `batched` are applied together, the others one by one. Leaves the transaction
    open, for the caller to add its own changes and commit; answers the ids of the
    events it applied. Another consumer applying one of them meanwhile makes the
    commit fail with IntegrityError: roll back and call again.
    """
    ids = {str(envelope["event_id"]) for envelope in envelopes}
    done = set(session.scalars(select(model.event_id).where(model.event_id.in_(ids))))
    fresh = {}
    for envelope in envelopes:
        event_id = str(envelope["event_id"])
        if event_id not in done:
            fresh.setdefault(event_id, envelope)
    now = utcnow()
    insert_rows(
        session,
        plain_insert(model),
        [
            {
                "event_id": event_id,
                "event_type": envelope["event_type"],
                "producer": envelope["producer"],
                "aggregate_id": envelope["aggregate_id"],
                "sequence": envelope["sequence"],
                "applied_at": now,
            }
            for event_id, envelope in fresh.items()
        ],
    )
    together = {}
    for envelope in fresh.values():
        effect = effect_of(envelope)
        if hasattr(effect, "apply_all"):
            together.setdefault(effect.apply_all, []).append(envelope)
        else:
            effect(session, envelope)
    for apply_all, group in together.items():
        apply_all(session, group)
    return set(fresh)


class Inbox(DependencyProvider):
    """Injects `apply(body, effect, data_schema)` for event handlers.

    With `batch_size` > 1, events that handlers apply at the same moment share
    one transaction (group commit): each handler waits until its event is
    committed, so a message is still acknowledged only once its effect is
    stored. A batch that fails for any reason is applied again event by
    event, with the single-event path's handling of errors.
    """

    def __init__(self, model, batch_size=1):
        self.model = model
        self.batch_size = batch_size

    def setup(self):
        self.database = find_database(self.container)
        self.waiting = eventlet.queue.LightQueue()

    def start(self):
        if self.batch_size > 1:
            self.container.spawn_managed_thread(self._commit_batches)

    def get_dependency(self, worker_ctx):
        return self

    def _commit_batches(self):
        while True:
            batch = [self.waiting.get()]
            while len(batch) < self.batch_size and not self.waiting.empty():
                batch.append(self.waiting.get_nowait())
            effects = {str(envelope["event_id"]): effect for envelope, effect, _ in batch}
            try:
                with self.database.session() as session:
                    applied = apply_many(
                        session,
                        self.model,
                        [envelope for envelope, _, _ in batch],
                        lambda envelope, effects=effects: effects[str(envelope["event_id"])],
                    )
                    session.commit()
            except Exception as exc:  # every kind: each event is tried again on its own
                log.info("a batch of %d events is applied one by one: %s", len(batch), exc)
                for _, _, done in batch:
                    done.send(None)
                continue
            for envelope, _, done in batch:
                done.send(str(envelope["event_id"]) in applied)

    def apply(self, body, effect, data_schema=None):
        """Validate `body`, then apply `effect` once. Returns whether it applied.

        An event that can never apply (an invalid body, data the database
        refuses) is logged with its whole body and dropped rather than raised:
        raising would send it back to the queue forever. Failures that may
        pass (see RETRYABLE) are raised, for the handler to requeue the event.
        """
        try:
            envelope = load_envelope(body, data_schema)
        except InvalidEvent as exc:
            log.error("rejected invalid event: %s", exc, extra={"event_body": body})
            return False
        ids = {"event_id": str(envelope["event_id"]), "aggregate_id": envelope["aggregate_id"]}
        if self.batch_size > 1:
            done = eventlet.event.Event()
            self.waiting.put((envelope, effect, done))
            applied = done.wait()
            if applied is not None:
                log.info(
                    "%s %s",
                    "applied" if applied else "skipped repeated",
                    envelope["event_type"],
                    extra=ids,
                )
                return applied
        try:
            with self.database.session() as session:
                applied = apply_once(session, self.model, envelope, effect)
        except RETRYABLE as exc:
            log.warning(
                "%s not applied yet, will retry: %s", envelope["event_type"], exc, extra=ids
            )
            time.sleep(RETRY_PAUSE_SECONDS)
            raise
        except SQLAlchemyError as exc:
            log.error(
                "dropped %s that cannot apply: %s",
                envelope["event_type"],
                exc,
                extra={**ids, "event_body": body},
            )
            return False
        log.info(
            "%s %s",
            "applied" if applied else "skipped repeated",
            envelope["event_type"],
            extra=ids,
        )
        return applied
