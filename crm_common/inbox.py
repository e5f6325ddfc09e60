"""Idempotent consumers: an event's effect is applied once, however often it arrives.

The consumer records the `event_id` in its own `applied_events` table in the
same transaction as the effect. A redelivered event finds its id there and
changes nothing; two instances racing on the same event are ordered by the
primary key, and the loser sees the winner's row and skips.

An event that fails goes to the consumer's dead letters (crm_common.dead_letters),
which retry it or keep it for an admin; only an unreachable database sends
it back to the queue.
"""

import logging
import time
from collections import Counter
from datetime import datetime
from functools import partial

import eventlet
import eventlet.event
import eventlet.queue
from nameko.events import EventHandler
from nameko.extensions import DependencyProvider
from sqlalchemy import Integer, String
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.orm.exc import StaleDataError

from crm_common import dead_letters, metrics
from crm_common.db import UTCDateTime, find_database, insert_new, lock_modes
from crm_common.envelope import InvalidEvent, load_envelope, utcnow
from crm_common.handlers import BatchEventHandler

log = logging.getLogger(__name__)

# Failures worth another try at once: the database is away or busy, another
# instance won a race on a view row, or a versioned row changed between the
# effect's read and its write (the next try reads it again).
RETRYABLE = (OperationalError, InterfaceError, IntegrityError, StaleDataError)
# An event whose failure cannot even be recorded (the database is away) goes
# back to the queue after this pause, so it does not spin while the outage lasts.
RETRY_PAUSE_SECONDS = 1
# Events a handler loads (validates) before it lets the other green threads run: a batch
# loaded at once held a report read for as long.
LOADS_BETWEEN_TURNS = 10
# The inbox is behind (a backlog drains) while events were left waiting after a batch
# was taken for the group commit this recently.
BEHIND_SECONDS = 1.0


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


def batched(apply_all, locks=None):
    """The effect of one event, made of `apply_all(session, envelopes)`, the effect of many
    at once (a handful of statements for a whole batch): apply_many hands it every event
    of a batch together. `locks(envelopes)` names the advisory locks (crm_common.db.lock_for)
    that `apply_all` needs, as {key: shared}; `apply_all` does not take them itself:
    apply_many takes those of a whole batch first, in one order, before any effect runs,
    and the effect of one event takes its own."""

    def apply_one(session, envelope):
        if locks is not None:
            lock_modes(session, locks([envelope]))
        apply_all(session, [envelope])

    apply_one.apply_all = apply_all
    apply_one.locks = locks
    return apply_one


def apply_many(session, model, envelopes, effect_of):
    """Apply each of `envelopes` not applied before, in the session's transaction.

    `effect_of(envelope)` is the event's effect; the events of an effect made by
    `batched` are applied together, the others one by one. Leaves the transaction
    open, for the caller to add its own changes and commit; answers the ids of the
    events it applied. The ids are claimed first, in one statement that skips
    those applied before; one that another consumer is applying meanwhile waits
    for its transaction, and counts as applied before once that commits.
    """
    fresh = {}
    for envelope in envelopes:
        fresh.setdefault(str(envelope["event_id"]), envelope)
    now = utcnow()
    claimed = set(
        insert_new(
            session,
            model,
            ("event_id",),
            [
                {
                    "event_id": event_id,
                    "event_type": envelope["event_type"],
                    "producer": envelope["producer"],
                    "aggregate_id": envelope["aggregate_id"],
                    "sequence": envelope["sequence"],
                    "applied_at": now,
                }
                # In id order, the one order of every consumer: two claiming overlapping
                # batches wait for each other instead of deadlocking.
                for event_id, envelope in sorted(fresh.items())
            ],
            returning="event_id",
        )
    )
    fresh = {event_id: envelope for event_id, envelope in fresh.items() if event_id in claimed}
    together, locks = {}, {}
    for envelope in fresh.values():
        effect = effect_of(envelope)
        apply_all = getattr(effect, "apply_all", None)
        if apply_all is None:  # applied alone: a group of its own
            together[partial(_apply_each, effect)] = [envelope]
        else:
            together.setdefault(apply_all, []).append(envelope)
            if getattr(effect, "locks", None) is not None:
                locks[apply_all] = effect.locks
    # Two consumers applying batches at once take their locks in one order, so that
    # neither holds what the other waits for while waiting for what the other holds:
    # first every advisory lock of the batch, in key order (a pipeline's, say, which
    # its own events take alone and its deals' events shared), then each group's rows,
    # the groups in the order of the event types they take. In arrival order, one could
    # hold the customers' rows and wait for the tickets' while the other held the
    # tickets' and waited for the customers'.
    modes = {}
    for apply_all, locks_of in locks.items():
        for key, shared in locks_of(together[apply_all]).items():
            modes[key] = modes.get(key, True) and shared
    lock_modes(session, modes)
    ordered = sorted(
        together.items(), key=lambda item: min(envelope["event_type"] for envelope in item[1])
    )
    for apply_all, group in ordered:
        apply_all(session, group)
    return set(fresh)


def _apply_each(effect, session, envelopes):
    for envelope in envelopes:
        effect(session, envelope)


class Inbox(DependencyProvider):
    """Injects `apply(body, effect, data_schema)` for event handlers.

    `model` is the consumer's AppliedEventMixin class, `dead_letter_model` its
    DeadLetterMixin class. With `batch_size` > 1, events that handlers apply
    at the same moment share one transaction (group commit): each handler
    waits until its event is committed, so a message is still acknowledged
    only once its effect is stored. A batch that fails for any reason is
    applied again event by event, with the single-event path's handling of
    errors.
    """

    def __init__(self, model, dead_letter_model, batch_size=1):
        self.model = model
        self.dead_letter_model = dead_letter_model
        self.batch_size = batch_size
        self.policy = dead_letters.RetryPolicy(max_attempts=1, retry_seconds=1)
        self.behind_at = None  # when events were last left waiting for a group commit

    def setup(self):
        self.database = find_database(self.container)
        self.service = self.container.service_name  # the metrics' label
        self.waiting = eventlet.queue.LightQueue()
        self.policy = dead_letters.RetryPolicy.from_config(self.container.config)

    def start(self):
        if self.batch_size > 1:
            self.container.spawn_managed_thread(self._commit_batches)

    def get_dependency(self, worker_ctx):
        entrypoint = worker_ctx.entrypoint
        if isinstance(entrypoint, EventHandler):
            consumer = dead_letters.Consumer(
                entrypoint.method_name, entrypoint.source_service, entrypoint.event_type
            )
            return InboxWorker(self, consumer)
        return InboxWorker(self, None)

    def consumer_of(self, body):
        """The handler of this service for the event `body` says it is, if any."""
        if not isinstance(body, dict) or getattr(self, "container", None) is None:
            return None
        for entrypoint in self.container.entrypoints:
            if (
                isinstance(entrypoint, EventHandler)
                and entrypoint.source_service == body.get("producer")
                and entrypoint.event_type == body.get("event_type")
            ):
                return dead_letters.Consumer(
                    entrypoint.method_name, entrypoint.source_service, entrypoint.event_type
                )
        return None

    def behind(self):
        """Whether events are piling up for the group commit (within BEHIND_SECONDS): work
        that events would soon undo again (segments, snapshots) can wait meanwhile."""
        return self.behind_at is not None and time.monotonic() - self.behind_at < BEHIND_SECONDS

    def takes_batches(self, handler):
        """Whether the service's method `handler` is given a list of bodies (its entrypoint
        is a BatchEventHandler) rather than one."""
        return any(
            isinstance(entrypoint, BatchEventHandler) and entrypoint.method_name == handler
            for entrypoint in self.container.entrypoints
        )

    def _commit_batches(self):
        while True:
            batch = [self.waiting.get()]
            while len(batch) < self.batch_size and not self.waiting.empty():
                batch.append(self.waiting.get_nowait())
            if not self.waiting.empty():
                self.behind_at = time.monotonic()
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
                event_id = str(envelope["event_id"])
                done.send(event_id in applied)
                applied.discard(event_id)  # a second delivery in the same batch is a repeat

    def apply(self, body, effect, data_schema=None, consumer=None):
        """Validate `body`, then apply `effect` once. Returns whether it applied.

        An event that fails is written to the dead letters (see
        crm_common.dead_letters) for its `consumer` (by default the handler of
        this service for its producer and type) and acknowledged: it never
        loops and never blocks the queue. Only when that write fails too (the
        database is away) is the error raised, for the handler to requeue it.
        """
        return self.apply_all([(body, effect, data_schema)], consumer)[0]

    def apply_all(self, items, consumer=None):
        """`apply` of each (body, effect, data_schema) of `items`, together: with a
        `batch_size` over 1 they all join the group commit at once. Answers whether
        each applied, in order; raises (for the handler to requeue them all) only
        when a failure cannot be recorded."""
        outcomes = [False] * len(items)
        started = []
        for place, (body, effect, data_schema) in enumerate(items):
            if place and place % LOADS_BETWEEN_TURNS == 0:
                eventlet.sleep(0)  # a report read waiting meanwhile gets its turn
            envelope = self._load(body, data_schema, consumer)
            if envelope is None:
                continue
            done = eventlet.event.Event() if self.batch_size > 1 else None
            started.append((place, body, envelope, effect, done))
        # All at once, once all are loaded: put one by one between the turns above, the
        # first few woke the commit thread at the first turn and went in a group commit of
        # their own, the rest waiting for it.
        for _, _, envelope, effect, done in started:
            if done is not None:
                self.waiting.put((envelope, effect, done))
        counts = Counter()
        for place, body, envelope, effect, done in started:
            applied = done.wait() if done is not None else None
            if applied is None:  # not batched, or its batch failed: alone
                applied = self._apply_alone(body, envelope, effect, consumer)
            if applied is not None:
                outcomes[place] = applied
                counts[envelope["event_type"], applied] += 1
                self._log_applied(envelope, applied)
        # Counted once per kind for the call, not per event (a few µs each, a backlog's
        # every event).
        for (event_type, applied), count in counts.items():
            metrics.EVENTS_CONSUMED.labels(self.service, event_type, _outcome(applied)).inc(count)
        return outcomes

    def _load(self, body, data_schema, consumer):
        """The envelope of `body`, or None (a dead letter) if it is no valid event."""
        try:
            return load_envelope(body, data_schema)
        except InvalidEvent as exc:
            event_type = body.get("event_type") if isinstance(body, dict) else None
            metrics.EVENTS_FAILED.labels(
                self.service, str(event_type or metrics.UNKNOWN), "invalid"
            ).inc()
            log.error("rejected invalid event: %s", exc, extra={"event_body": body})
            self._dead_letter(body, exc, consumer)
            return None

    def _apply_alone(self, body, envelope, effect, consumer):
        """Whether the event applied in a transaction of its own; None if it failed (it is
        a dead letter then)."""
        event_type = envelope["event_type"]
        try:
            with self.database.session() as session:
                return apply_once(session, self.model, envelope, effect)
        except Exception as exc:  # every kind: the dead letters decide what happens next
            log.warning("%s not applied: %s", event_type, exc, extra=ids_of(envelope))
            self._dead_letter(body, exc, consumer, event_type)
            return None

    def apply_now(self, body, effect, data_schema=None):
        """Apply `body` once or raise what failed: for a retry or replay of a dead letter."""
        envelope = load_envelope(body, data_schema)
        with self.database.session() as session:
            applied = apply_once(session, self.model, envelope, effect)
        metrics.EVENTS_CONSUMED.labels(
            self.service, envelope["event_type"], _outcome(applied)
        ).inc()
        self._log_applied(envelope, applied)
        return applied

    def _dead_letter(self, body, exc, consumer, event_type=None):
        """Record the failure; with `event_type`, count it by what happens next
        (an invalid event is counted as such by its caller)."""
        consumer = consumer or self.consumer_of(body) or dead_letters.Consumer(None, None, None)
        try:
            with self.database.session() as session:
                letter = dead_letters.record_failure(
                    session, self.dead_letter_model, body, consumer, exc, self.policy
                )
                # Named before the session closes: its attributes expire then.
                where = {
                    "dead_letter_id": letter.id,
                    "status": letter.status,
                    "attempts": letter.attempts,
                    "handler": consumer.handler,
                    "event_id": letter.event_id,
                }
        except Exception as db_exc:  # the driver's own errors too (a broken connection)
            # The failure cannot be recorded: the database is away (an outage,
            # not a bad message). Back to the queue, after a pause, uncounted.
            log.warning(
                "cannot record a failed event, it goes back to the queue: %s",
                db_exc,
                extra={"error": dead_letters.describe(exc)},
            )
            if event_type:
                metrics.EVENTS_FAILED.labels(self.service, event_type, "requeued").inc()
            time.sleep(RETRY_PAUSE_SECONDS)
            raise exc from db_exc
        if event_type:
            reason = "dead" if where["status"] == dead_letters.DEAD else "retry"
            metrics.EVENTS_FAILED.labels(self.service, event_type, reason).inc()
        log.error(
            "event %s: %s",
            "kept as a dead letter" if where["status"] == dead_letters.DEAD else "will be retried",
            dead_letters.describe(exc),
            extra=where,
        )

    @staticmethod
    def _log_applied(envelope, applied):
        """The one line of an event taken in (its count is the caller's)."""
        if log.isEnabledFor(logging.INFO):  # its ids are not made for nothing
            log.info(
                "%s %s",
                "applied" if applied else "skipped repeated",
                envelope["event_type"],
                extra=ids_of(envelope),
            )


def _outcome(applied):
    return "applied" if applied else "repeated"


def ids_of(envelope):
    """What a log line says of an event, to follow it across services."""
    return {"event_id": str(envelope["event_id"]), "aggregate_id": envelope["aggregate_id"]}


class InboxWorker:
    """What a worker sees as `self.inbox`: the inbox, knowing which handler runs.

    While it runs a dead letter again (`rerun`), `apply` applies at once and
    raises what fails, for the run to settle the entry.
    """

    def __init__(self, inbox, consumer):
        self._inbox = inbox
        self._consumer = consumer
        self._rerunning = False
        self._outcome = None

    @property
    def database(self):
        return self._inbox.database

    def apply(self, body, effect, data_schema=None):
        if self._rerunning:
            applied = self._inbox.apply_now(body, effect, data_schema)
            self._outcome = "applied" if applied else "already_applied"
            return applied
        return self._inbox.apply(body, effect, data_schema, consumer=self._consumer)

    def apply_all(self, items):
        """`apply` of each (body, effect, data_schema) of `items`, together (Inbox.apply_all)."""
        if self._rerunning:
            return [self.apply(*item) for item in items]
        return self._inbox.apply_all(items, consumer=self._consumer)

    def rerun(self, service, letter):
        """Run the letter's handler on `service` again; its outcome, or raises what failed.

        The outcome is "applied", "already_applied" (an earlier try or another
        delivery applied it) or "ignored" (the handler does not apply it).
        """
        handler = letter.handler or (self._inbox.consumer_of(letter.body) or letter).handler
        if handler is None or not callable(getattr(service, handler, None)):
            raise LookupError(f"{service.name} has no handler for this message")
        self._rerunning, self._outcome = True, "ignored"
        try:
            if self._inbox.takes_batches(handler):
                getattr(service, handler)([letter.body])
            else:
                getattr(service, handler)(letter.body)
        finally:
            self._rerunning = False
        return self._outcome

    @property
    def dead_letter_model(self):
        return self._inbox.dead_letter_model

    def behind(self):
        return self._inbox.behind()

    @property
    def policy(self):
        return self._inbox.policy
