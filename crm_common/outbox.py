"""Transactional outbox: no event is lost between a commit and the broker.

A service writes each event as a row of its own `outbox` table in the same
transaction as the state change (`self.outbox.add(session, ...)`). Once that
transaction commits and the worker has answered, its events go to the
outbox's sender, a greenthread that publishes what every worker committed
since its last round as one batch (persistent, to the exchange and routing
key of Nameko's `EventDispatcher`, one wait for the publisher confirms:
crm_common/batch_publish.py) and marks the confirmed rows published in one
statement. A worker never waits on the broker, and a create costs no
publish round trip and no second write of its own. If the broker is down,
or the process dies before the sender's round, the rows stay unpublished
and the relay (`relay()`, run by a timer in every producer) publishes them
later. Delivery is therefore at least once; consumers de-duplicate on
`event_id`.

The table is also the producer's event log, served by `events_since`, which
pages by each row's `log_position`. A writer inserts its row without one, so
writers never wait for each other's commits; committed rows get their
positions afterwards, a batch at a time and all of them in id order, from
one numbering transaction at a time (under the OUTBOX_LOCK advisory lock on
PostgreSQL; SQLite has one writer anyway). A position is therefore only ever
given to a committed row and always above every position given before, so a
reader following the cursor never skips an event, however late it
commits. The sender numbers after each round, the relay every run (what a
crash left), and `events_since` before it reads, so a page holds every event
committed before the call.
"""

import functools
import logging
import time
from datetime import datetime, timedelta

from eventlet.queue import LightQueue
from eventlet.semaphore import Semaphore
from nameko.constants import AMQP_SSL_CONFIG_KEY, AMQP_URI_CONFIG_KEY, LOGIN_METHOD_CONFIG_KEY
from nameko.events import EventDispatcher
from sqlalchemy import (
    JSON,
    BigInteger,
    Index,
    Integer,
    String,
    UniqueConstraint,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from crm_common import metrics
from crm_common.batch_publish import BatchPublisher
from crm_common.db import UTCDateTime, bulk_insert, find_database, lock_for
from crm_common.envelope import SCHEMA_VERSION, make_envelope, utcnow
from crm_common.errors import ValidationFailed

log = logging.getLogger(__name__)

# Held by the transaction numbering committed events (one at a time per database),
# so that each takes its positions above those of the one before.
OUTBOX_LOCK = "outbox"
# Rows a numbering transaction gives positions to at most.
NUMBER_BATCH = 5000

# A rebuild replays whole logs: large pages save round trips (5,000 events are a few MB).
MAX_EVENTS_PAGE = 5000
RELAY_BATCH = 500
# One relay run publishes for at most this long, then lets the timer breathe.
RELAY_BUDGET_SECONDS = 10
# A transaction writing more events than this leaves them all to the relay,
# rather than holding them in memory and a worker busy after its reply.
IMMEDIATE_PUBLISH_LIMIT = 500


class OutboxMixin:
    """Columns of a service's `outbox` table; mix into the service's own Base."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    event_type: Mapped[str] = mapped_column(String(64))
    aggregate_id: Mapped[str] = mapped_column(String(64))
    sequence: Mapped[int] = mapped_column(Integer)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    body: Mapped[dict] = mapped_column(JSON)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # The row's place in the event log (events_since), given once it is committed.
    log_position: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))

    @declared_attr.directive
    def __table_args__(cls):
        return (
            # One event per position in an aggregate's history, and in the log.
            UniqueConstraint("aggregate_id", "sequence"),
            UniqueConstraint("log_position"),
            # The rows still to number, found without reading the numbered ones.
            Index(
                "ix_outbox_unnumbered",
                "id",
                postgresql_where=text("log_position IS NULL"),
                sqlite_where=text("log_position IS NULL"),
            ),
        )


class Outbox(EventDispatcher):
    """Event dispatcher that writes through the service's outbox table.

    `model` is the service's `OutboxMixin` class; `catalog` maps each event
    type the service emits to the marshmallow schema of its `data`.
    """

    def __init__(self, model, catalog, **options):
        super().__init__(**options)
        self.model = model
        self.catalog = catalog
        self.committed = {}
        # Envelopes of committed transactions, a list per worker, for the sender.
        self.outgoing = LightQueue()
        # Held for each round of sending: stop() waits for the sender's round in flight.
        self.sending = Semaphore()

    def setup(self):
        super().setup()
        config = self.container.config
        self.publisher = BatchPublisher(
            config[AMQP_URI_CONFIG_KEY],
            serializer=self.container.serializer,  # the service's, as Nameko's dispatcher
            ssl=config.get(AMQP_SSL_CONFIG_KEY),
            login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
        )
        self.database = find_database(self.container)
        self.relay_grace = timedelta(seconds=config["CRM_OUTBOX_RELAY_GRACE"])

    def start(self):
        super().start()
        self.container.spawn_managed_thread(self.send_committed, identifier="outbox sender")
        metrics.watch(
            self,
            self.container.service_name,
            "crm_outbox_backlog",
            "Events committed to the outbox and not yet published.",
            lambda: [({}, self.unpublished_count())],
        )

    def stop(self):
        metrics.forget(self)
        # Every worker has ended: what they committed goes out before the process does,
        # the sender's round in flight included.
        with self.sending:
            self.send_waiting()
        self.publisher.close()
        super().stop()

    def kill(self):
        self.publisher.close()
        super().kill()

    def get_dependency(self, worker_ctx):
        self.committed[worker_ctx] = []
        return OutboxWriter(self, self.committed[worker_ctx])

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        # Runs after the worker replied; the sender publishes, so the worker is free.
        envelopes = self.committed.pop(worker_ctx, [])
        if envelopes:
            self.outgoing.put(envelopes)

    def worker_teardown(self, worker_ctx):
        self.committed.pop(worker_ctx, None)

    def send_committed(self):
        """The sender: each round publishes what was committed since the last one."""
        while True:
            first = self.outgoing.get()
            with self.sending:
                try:
                    self.send_waiting(first)
                except Exception:  # never: the sender's end would stop the service
                    log.exception("the outbox sender failed a round; the relay sends its events")

    def send_waiting(self, first=()):
        """Publish and mark `first` and every committed envelope waiting, in batches."""
        envelopes = list(first)
        while not self.outgoing.empty() or envelopes:
            while not self.outgoing.empty() and len(envelopes) < RELAY_BATCH:
                envelopes.extend(self.outgoing.get_nowait())
            self.publish_and_mark(envelopes)
            envelopes = []

    def publish_and_mark(self, envelopes):
        """Publish in order; mark what the broker confirmed. Stops at the first failure."""
        service = self.container.service_name
        count, error = self.publisher.publish_many(envelopes, self.exchange)
        sent = [envelope["event_id"] for envelope in envelopes[:count]]
        for envelope in envelopes[:count]:
            metrics.EVENTS_PUBLISHED.labels(service, envelope["event_type"]).inc()
        if count < len(envelopes):  # the broker is away: the relay retries later
            for envelope in envelopes[count:]:
                metrics.EVENTS_FAILED.labels(service, envelope["event_type"], "publish").inc()
            log.warning(
                "outbox publish failed, %d event(s) left for the relay: %s",
                len(envelopes) - count,
                error or "not confirmed by the broker",
            )
        try:
            self.mark_published(sent)
        except Exception as exc:  # the sender's end would stop the service
            log.warning(
                "could not mark %d published event(s), the relay will resend: %s",
                len(sent),
                exc,
            )
            return 0  # nothing settled: the relay must not loop on the same rows
        return len(sent)

    def mark_published(self, event_ids):
        """Number what is committed, then mark `event_ids` published, in one transaction."""
        model = self.model
        with self.database.session() as session:
            # The lock before this transaction touches a row: two instances' rounds then
            # queue on the lock, never each hold rows the other wants.
            number_some(session, model)
            if event_ids:
                session.execute(
                    update(model).where(model.event_id.in_(event_ids)).values(published_at=utcnow())
                )
            session.commit()

    def number_committed(self):
        """Give every committed event without a log position one; answers how many.

        Cheap when there is none: one look at the index of unnumbered rows,
        without the lock.
        """
        model = self.model
        total = 0
        while True:
            with self.database.session() as session:
                waiting = session.scalar(
                    select(model.id).where(model.log_position.is_(None)).limit(1)
                )
            if waiting is None:
                return total
            with self.database.session() as session:
                numbered = number_some(session, model)
                session.commit()
            total += numbered
            if numbered < NUMBER_BATCH:
                return total

    def relay(self):
        """Publish what is committed but still unsent (after a crash or outage).

        Rows younger than the grace period are left to the worker that wrote
        them. No lock is held while publishing; two instances may both send a
        row they read at the same moment, which consumers de-duplicate.
        """
        model = self.model
        cutoff = utcnow() - self.relay_grace
        deadline = time.monotonic() + RELAY_BUDGET_SECONDS
        # What a crash left between a commit and its numbering, whatever the broker does.
        self.number_committed()
        total = 0
        while time.monotonic() < deadline:
            with self.database.session() as session:
                bodies = session.scalars(
                    select(model.body)
                    .where(model.published_at.is_(None), model.occurred_at < cutoff)
                    .order_by(model.id)
                    .limit(RELAY_BATCH)
                ).all()
            if not bodies:
                break
            sent = self.publish_and_mark(bodies)
            total += sent
            if sent < len(bodies):  # the broker is away: try again next run
                break
        if total:
            log.info("outbox relay published %d unsent event(s)", total)
        return total

    def events_since(self, cursor=None, limit=100):
        """A page of the event log after `cursor`, oldest first: every event committed
        before the call is in the log, at a position above those of any page before."""
        position = parse_cursor(cursor)
        if (
            not isinstance(limit, int)
            or isinstance(limit, bool)
            or not 1 <= limit <= MAX_EVENTS_PAGE
        ):
            raise ValidationFailed(
                f"limit must be a whole number from 1 to {MAX_EVENTS_PAGE}",
                {"limit": [f"Must be between 1 and {MAX_EVENTS_PAGE}."]},
            )
        self.number_committed()
        model = self.model
        with self.database.session() as session:
            rows = session.execute(
                select(model.log_position, model.body)
                .where(model.log_position > position)
                .order_by(model.log_position)
                .limit(limit)
            ).all()
        next_cursor = str(rows[-1].log_position) if rows else str(position)
        return {"events": [row.body for row in rows], "next_cursor": next_cursor}

    def unpublished_count(self):
        with self.database.session() as session:
            return session.scalar(
                select(func.count())
                .select_from(self.model)
                .where(self.model.published_at.is_(None))
            )


def parse_cursor(cursor):
    if cursor in (None, ""):
        return 0
    try:
        position = int(cursor)
    except (TypeError, ValueError):
        position = -1
    if position < 0:
        raise ValidationFailed(
            "cursor is not one this service gave out", {"cursor": ["Invalid cursor."]}
        )
    return position


OUTBOX_COLUMNS = ("event_id", "event_type", "aggregate_id", "sequence", "occurred_at", "body")
# Positions follow on from the highest given, in id order: two events of one aggregate
# are committed in the order of their sequence, and their ids are in that order too.
NUMBER_SQL = (
    "UPDATE {table} SET log_position = numbered.top + numbered.rank FROM ("
    " SELECT todo.id AS id, row_number() OVER (ORDER BY todo.id) AS rank,"
    " (SELECT coalesce(max(log_position), 0) FROM {table}) AS top"
    " FROM (SELECT id FROM {table} WHERE log_position IS NULL ORDER BY id LIMIT :limit) AS todo"
    ") AS numbered WHERE {table}.id = numbered.id"
)


@functools.cache
def number_statement(table):
    return text(NUMBER_SQL.format(table=table))


def number_some(session, model):
    """In `session`'s transaction: up to NUMBER_BATCH committed events without a log
    position get the next ones, in id order. Answers how many.

    The lock comes first and is held to the commit, so the statement after it
    sees every position the numbering before gave (read committed: a snapshot
    per statement); rows not committed yet are not seen, and a later round
    numbers them, above.
    """
    lock_for(session, OUTBOX_LOCK)
    statement = number_statement(model.__tablename__)
    return session.execute(statement, {"limit": NUMBER_BATCH}).rowcount


class OutboxWriter:
    """What a worker sees as `self.outbox`."""

    def __init__(self, outbox, committed):
        self._outbox = outbox
        self._committed = committed

    def add(self, session, event_type, aggregate_id, sequence, data, schema_version=SCHEMA_VERSION):
        """Write one event in `session`'s transaction; it is published after commit."""
        [envelope] = self.add_many(
            session, [(event_type, aggregate_id, sequence, data)], schema_version
        )
        return envelope

    def add_many(self, session, events, schema_version=SCHEMA_VERSION):
        """Write events given as (event_type, aggregate_id, sequence, data), in order.

        The first event of each type is checked against the envelope and
        its data schema; the rest of a batch come from the same code path,
        and checking each again would cost more than writing them.
        """
        outbox = self._outbox
        envelopes = []
        checked = set()
        for event_type, aggregate_id, sequence, data in events:
            if event_type not in outbox.catalog:
                raise KeyError(
                    f"{event_type!r} is not in {outbox.container.service_name}'s event catalog"
                )
            envelopes.append(
                make_envelope(
                    event_type=event_type,
                    producer=outbox.container.service_name,
                    aggregate_id=aggregate_id,
                    sequence=sequence,
                    data=data,
                    data_schema=outbox.catalog[event_type],
                    schema_version=schema_version,
                    check=event_type not in checked,
                )
            )
            checked.add(event_type)
        if not envelopes:
            return envelopes
        self._track(session)
        rows = [
            (
                envelope["event_id"],
                envelope["event_type"],
                envelope["aggregate_id"],
                envelope["sequence"],
                datetime.fromisoformat(envelope["occurred_at"]),
                envelope,
            )
            for envelope in envelopes
        ]
        # No lock and no log position: the row is numbered once committed (Outbox.number_committed).
        bulk_insert(session, outbox.model.__table__, OUTBOX_COLUMNS, rows)
        pending = session.info["outbox_pending"]
        if len(pending) + len(envelopes) <= IMMEDIATE_PUBLISH_LIMIT:
            pending.extend(envelopes)
        return envelopes

    def _track(self, session):
        """Hand the session's events to the worker when, and only if, it commits."""
        if session.info.get("outbox_tracked"):
            return
        session.info.update(outbox_tracked=True, outbox_pending=[])
        committed = self._committed

        def on_commit(session):
            committed.extend(session.info["outbox_pending"])
            session.info.update(outbox_pending=[])

        def on_rollback(session):
            session.info.update(outbox_pending=[])

        event.listen(session, "after_commit", on_commit)
        event.listen(session, "after_rollback", on_rollback)

    def relay(self):
        return self._outbox.relay()

    def events_since(self, cursor=None, limit=100):
        return self._outbox.events_since(cursor, limit)

    def unpublished_count(self):
        return self._outbox.unpublished_count()
