import eventlet
import eventlet.event
import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from crm_common.envelope import InvalidEvent
from crm_common.errors import ValidationFailed
from crm_common.outbox import OutboxWriter
from services.customers import domain
from services.customers.events import CATALOG
from services.customers.models import OutboxEvent
from tests.support.fakes import FakePublisher, bound_outbox, database_for


def created(customer_id):
    return domain.new_profile(
        customer_id=customer_id, name="Ada", created_at="2026-01-31T12:00:00+00:00"
    )


@pytest.fixture
def database(make_db_url):
    url = make_db_url("sqlite", "customers", schema="customers")
    return database_for(url)


@pytest.fixture
def outbox(database):
    return bound_outbox(OutboxEvent, CATALOG, database)


class Worker:
    """One worker's view of the outbox, finished the way Nameko finishes it."""

    def __init__(self, outbox):
        self.outbox = outbox
        self.committed = []
        self.writer = OutboxWriter(outbox, self.committed)

    def finish(self):
        if self.committed:
            self.outbox.publish_and_mark(self.committed)


def rows(database):
    with database.session() as session:
        return session.scalars(select(OutboxEvent).order_by(OutboxEvent.id)).all()


def test_event_is_published_only_after_its_transaction_commits(outbox, database):
    worker = Worker(outbox)
    with database.session() as session:
        envelope = worker.writer.add(session, "customer_created", "c-1", 1, created("c-1"))
        assert outbox.publisher.sent == []  # nothing leaves before commit
        session.commit()
    worker.finish()
    assert outbox.publisher.event_ids == [envelope["event_id"]]
    [row] = rows(database)
    assert row.published_at is not None
    assert row.body == envelope


def test_rolled_back_event_is_never_published_or_kept(outbox, database):
    worker = Worker(outbox)
    with database.session() as session:
        worker.writer.add(session, "customer_created", "c-1", 1, created("c-1"))
        session.rollback()
    worker.finish()
    assert outbox.publisher.sent == []
    assert rows(database) == []


def test_broker_outage_keeps_the_event_for_the_relay(outbox, database):
    outbox.publisher.down = True
    worker = Worker(outbox)
    with database.session() as session:
        envelope = worker.writer.add(session, "customer_created", "c-1", 1, created("c-1"))
        session.commit()
    worker.finish()
    [row] = rows(database)
    assert row.published_at is None

    assert outbox.relay() == 0  # still down: still kept
    assert rows(database)[0].published_at is None

    outbox.publisher.down = False
    assert outbox.relay() == 1
    assert outbox.publisher.event_ids == [envelope["event_id"]]
    assert rows(database)[0].published_at is not None
    assert outbox.relay() == 0  # nothing is sent twice by the relay itself


def test_relay_leaves_fresh_events_to_the_worker_that_wrote_them(database):
    outbox = bound_outbox(OutboxEvent, CATALOG, database, grace_seconds=60)
    with database.session() as session:
        OutboxWriter(outbox, []).add(session, "customer_created", "c-1", 1, created("c-1"))
        session.commit()
    assert outbox.relay() == 0
    assert outbox.publisher.sent == []


def test_relay_publishes_in_the_order_events_were_written(outbox, database):
    outbox.publisher.down = True
    writer = OutboxWriter(outbox, [])
    written = []
    for number in range(5):
        with database.session() as session:
            written.append(
                writer.add(session, "customer_created", f"c-{number}", 1, created(f"c-{number}"))
            )
            session.commit()
    outbox.publisher.down = False
    assert outbox.relay() == 5
    assert outbox.publisher.event_ids == [body["event_id"] for body in written]


def test_events_since_pages_through_the_log_in_order(outbox, database):
    writer = OutboxWriter(outbox, [])
    with database.session() as session:
        written = [
            writer.add(session, "customer_created", f"c-{n}", 1, created(f"c-{n}"))
            for n in range(7)
        ]
        session.commit()
    seen, cursor = [], None
    while True:
        page = outbox.events_since(cursor, limit=3)
        if not page["events"]:
            break
        seen.extend(page["events"])
        cursor = page["next_cursor"]
    assert seen == written
    assert outbox.events_since(cursor, limit=3) == {"events": [], "next_cursor": cursor}


@pytest.mark.parametrize("cursor", ["abc", "-1", "1.5"])
def test_events_since_rejects_a_cursor_it_never_gave(outbox, cursor):
    with pytest.raises(ValidationFailed):
        outbox.events_since(cursor)


@pytest.mark.parametrize("limit", [0, 5001, "10", True])
def test_events_since_rejects_a_bad_limit(outbox, limit):
    with pytest.raises(ValidationFailed):
        outbox.events_since(None, limit)


def test_unknown_event_type_is_refused(outbox, database):
    with database.session() as session, pytest.raises(KeyError):
        OutboxWriter(outbox, []).add(session, "customer_vanished", "c-1", 1, {})


def test_invalid_event_data_is_refused_before_anything_is_written(outbox, database):
    with database.session() as session:
        with pytest.raises(InvalidEvent):
            OutboxWriter(outbox, []).add(
                session, "customer_created", "c-1", 1, {"customer_id": "c-1"}
            )
        session.commit()
    assert rows(database) == []


def test_one_aggregate_cannot_have_two_events_at_one_sequence(outbox, database):
    writer = OutboxWriter(outbox, [])
    with database.session() as session:
        writer.add(session, "customer_created", "c-1", 1, created("c-1"))
        with pytest.raises(IntegrityError):
            writer.add(session, "customer_created", "c-1", 1, created("c-1"))


def test_failing_to_mark_a_published_event_never_fails_the_worker(outbox, database):
    def database_gone(event_ids):
        raise ConnectionError("database went away after the commit")

    worker = Worker(outbox)
    with database.session() as session:
        envelope = worker.writer.add(session, "customer_created", "c-1", 1, created("c-1"))
        session.commit()
    outbox.mark_published = database_gone
    worker.finish()  # must not raise: it runs where an exception kills the service
    assert outbox.publisher.event_ids == [envelope["event_id"]]

    del outbox.mark_published  # the database is back: the relay sends it again, and marks it
    assert outbox.relay() == 1
    assert rows(database)[0].published_at is not None


def test_a_large_batch_is_left_to_the_relay_in_order(outbox, database):
    worker = Worker(outbox)
    events = [("customer_created", f"c-{n}", 1, created(f"c-{n}")) for n in range(1200)]
    with database.session() as session:
        written = worker.writer.add_many(session, events)
        session.commit()
    worker.finish()
    assert outbox.publisher.sent == []  # not held in memory by the worker
    assert outbox.relay() == 1200
    assert outbox.publisher.event_ids == [envelope["event_id"] for envelope in written]


def committed_by_worker(outbox, database, number):
    """A worker that committed customer `number`'s event and ended, as Nameko ends it."""
    worker_ctx = object()
    writer = outbox.get_dependency(worker_ctx)
    with database.session() as session:
        envelope = writer.add(session, "customer_created", f"c-{number}", 1, created(f"c-{number}"))
        session.commit()
    outbox.worker_result(worker_ctx)
    outbox.worker_teardown(worker_ctx)
    return envelope


def test_a_worker_hands_its_events_to_the_sender_and_never_waits_on_the_broker(outbox, database):
    envelope = committed_by_worker(outbox, database, 1)
    assert outbox.publisher.sent == []  # the worker is free before any publish
    assert rows(database)[0].published_at is None

    outbox.send_waiting()
    assert outbox.publisher.event_ids == [envelope["event_id"]]
    assert rows(database)[0].published_at is not None


def test_the_sender_publishes_what_several_workers_committed_as_one_batch(outbox, database):
    written = [committed_by_worker(outbox, database, number) for number in range(3)]
    outbox.send_waiting()
    event_ids = [envelope["event_id"] for envelope in written]
    assert outbox.publisher.batches == [event_ids]  # one wait for the confirms, in order
    assert all(row.published_at is not None for row in rows(database))


def test_events_the_broker_did_not_confirm_stay_for_the_relay(outbox, database):
    class ConfirmsTwo(FakePublisher):
        def publish_many(self, bodies, exchange=None):
            self.sent.extend(bodies[:2])
            return 2, None  # the third was refused (nacked)

    outbox.publisher = ConfirmsTwo()
    written = [committed_by_worker(outbox, database, number) for number in range(3)]
    outbox.send_waiting()
    assert [row.published_at is not None for row in rows(database)] == [True, True, False]

    outbox.publisher = FakePublisher()
    assert outbox.relay() == 1
    assert outbox.publisher.event_ids == [written[2]["event_id"]]


def test_a_rolled_back_worker_hands_nothing_to_the_sender(outbox, database):
    worker_ctx = object()
    writer = outbox.get_dependency(worker_ctx)
    with database.session() as session:
        writer.add(session, "customer_created", "c-1", 1, created("c-1"))
        session.rollback()
    outbox.worker_result(worker_ctx)
    outbox.send_waiting()
    assert outbox.publisher.batches == []
    assert rows(database) == []


class SlowBroker(FakePublisher):
    """Confirms a batch once `confirms` is sent; closing drops what is unconfirmed."""

    def __init__(self):
        super().__init__()
        self.confirms = eventlet.event.Event()
        self.closed = False

    def publish_many(self, bodies, exchange=None):
        self.confirms.wait()
        if self.closed:
            return 0, ConnectionError("connection closed")
        return super().publish_many(bodies, exchange)

    def close(self):
        self.closed = True


def test_stop_sends_the_round_the_sender_holds_before_it_returns(outbox, database):
    """The sender may hold a round it took from the queue: stop() must not find the queue
    empty, close the publisher under that round and return (its events would then wait
    for a relay: a lone instance's restart)."""
    outbox.publisher = broker = SlowBroker()
    committed_by_worker(outbox, database, 1)
    sender = eventlet.spawn(outbox.send_committed)
    eventlet.sleep(0)  # the sender takes the round and waits for its confirms
    stopping = eventlet.spawn(outbox.stop)
    eventlet.sleep(0.2)
    stopped_early = stopping.dead
    broker.confirms.send()
    stopping.wait()
    sender.kill()  # the container kills its managed threads once its extensions stopped
    assert not stopped_early, "stop() returned while the sender's round was in flight"
    assert [row.published_at is not None for row in rows(database)] == [True]


def positions(database):
    return [row.log_position for row in rows(database)]


def test_a_committed_event_is_numbered_in_the_log_by_the_sender(outbox, database):
    committed_by_worker(outbox, database, 1)
    assert positions(database) == [None]  # the writer gives none: it waits for no one
    outbox.send_waiting()
    assert positions(database) == [1]


def test_the_relay_numbers_what_a_crash_left_even_while_the_broker_is_down(outbox, database):
    outbox.publisher.down = True
    writer = OutboxWriter(outbox, [])  # no sender ever hears of them: the process died
    with database.session() as session:
        written = writer.add_many(
            session, [("customer_created", f"c-{n}", 1, created(f"c-{n}")) for n in range(3)]
        )
        session.commit()
    assert outbox.relay() == 0
    assert positions(database) == [1, 2, 3]
    assert outbox.events_since(None)["events"] == written


def test_events_since_serves_every_event_committed_before_the_call(outbox, database):
    first = committed_by_worker(outbox, database, 1)
    outbox.send_waiting()
    cursor = outbox.events_since(None)["next_cursor"]
    second = committed_by_worker(outbox, database, 2)  # its sender's round not run yet
    assert outbox.events_since(cursor) == {"events": [second], "next_cursor": "2"}
    assert outbox.events_since(None)["events"] == [first, second]


def test_positions_follow_on_from_the_highest_given(outbox, database):
    """Rows from before log positions keep their ids as positions (the migration): new
    events come after them, so the cursors given out then stay valid."""
    committed_by_worker(outbox, database, 1)
    with database.session() as session:
        session.execute(update(OutboxEvent).values(log_position=40))
        session.commit()
    committed_by_worker(outbox, database, 2)
    page = outbox.events_since("40")
    assert [event["aggregate_id"] for event in page["events"]] == ["c-2"]
    assert page["next_cursor"] == "41"
