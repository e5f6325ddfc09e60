"""PostgreSQL: writers commit without waiting for each other, and a reader following the
event log (`events_since`) still never skips an event, however late it commits: events are
numbered in the log once committed (crm_common/outbox.py)."""

import random

import eventlet
import pytest
from sqlalchemy import func, select

from crm_common.outbox import OutboxWriter
from services.customers import domain
from services.customers.events import CATALOG
from services.customers.models import OutboxEvent
from tests.support.fakes import bound_outbox, database_for


def created(customer_id):
    return domain.new_profile(
        customer_id=customer_id, name="Ada", created_at="2026-01-31T12:00:00+00:00"
    )


def updated(customer_id):
    return {"customer_id": customer_id, "changes": {"name": ["Ada", "Grace"]}}


@pytest.fixture
def database(make_db_url):
    database = database_for(make_db_url("postgres", "customers", schema="customers"))
    yield database
    database.engine.dispose()


@pytest.fixture
def outbox(database):
    return bound_outbox(OutboxEvent, CATALOG, database)


def read_all(outbox, cursor, limit=100):
    """Every event after `cursor`, page by page: (events, the cursor after them)."""
    events = []
    while True:
        page = outbox.events_since(cursor, limit)
        if not page["events"]:
            return events, cursor
        events.extend(page["events"])
        cursor = page["next_cursor"]


def test_a_writer_never_waits_for_an_earlier_uncommitted_one(outbox, database):
    writer = OutboxWriter(outbox, [])
    first, second = database.session(), database.session()
    try:
        writer.add(first, "customer_created", "c-first", 1, created("c-first"))

        def write_second():
            writer.add(second, "customer_created", "c-second", 1, created("c-second"))
            second.commit()

        later = eventlet.spawn(write_second)
        with eventlet.Timeout(5):
            later.wait()  # committed while the first still holds its transaction open
        first.commit()
    finally:
        first.close()
        second.close()


def test_an_event_committed_after_a_reader_passed_later_ones_is_still_served(outbox, database):
    """The earlier row (lower id) commits last: a log paged by id would skip it."""
    writer = OutboxWriter(outbox, [])
    early, late = database.session(), database.session()
    try:
        writer.add(early, "customer_created", "c-early", 1, created("c-early"))
        writer.add(late, "customer_created", "c-late", 1, created("c-late"))
        late.commit()
        seen, cursor = read_all(outbox, None)
        assert [event["aggregate_id"] for event in seen] == ["c-late"]
        early.commit()
    finally:
        early.close()
        late.close()
    seen, _ = read_all(outbox, cursor)
    assert [event["aggregate_id"] for event in seen] == ["c-early"]


def test_events_a_crash_left_unnumbered_are_served_by_another_instance(outbox, database):
    writer = OutboxWriter(outbox, [])  # no worker_result, no sender: the process died
    with database.session() as session:
        written = writer.add_many(
            session, [("customer_created", f"c-{n}", 1, created(f"c-{n}")) for n in range(3)]
        )
        session.commit()
    with database.session() as session:
        assert session.scalar(select(func.max(OutboxEvent.log_position))) is None
    other = bound_outbox(OutboxEvent, CATALOG, database)
    seen, _ = read_all(other, None)
    assert seen == written


def test_concurrent_writers_instances_and_a_reader_never_lose_or_repeat_an_event(database):
    """Writers commit in any order (a customer created then updated, others alone), two
    instances number and send while a reader pages the log from the first event on."""
    instances = [bound_outbox(OutboxEvent, CATALOG, database) for _ in range(2)]
    rng = random.Random(7)
    written = []
    writing = True

    def write(number):
        outbox = instances[number % 2]
        customer = f"c-{number}"
        events = [("customer_created", customer, 1, created(customer))]
        if number % 3 == 0:
            events.append(("customer_updated", customer, 2, updated(customer)))
        for event in events:  # one transaction per event: the update waits for the create
            worker_ctx = object()
            writer = outbox.get_dependency(worker_ctx)
            with database.session() as session:
                written.append(writer.add(session, *event)["event_id"])
                eventlet.sleep(rng.random() * 0.02)  # commits land out of id order
                session.commit()
            outbox.worker_result(worker_ctx)

    def send(outbox):
        while writing or not outbox.outgoing.empty():
            outbox.send_waiting()
            eventlet.sleep(0.005)

    seen = []

    def read():
        cursor = None
        while writing:
            page = instances[1].events_since(cursor, 7)
            seen.extend(page["events"])
            cursor = page["next_cursor"]
            eventlet.sleep(0.003)
        rest, _ = read_all(instances[1], cursor)
        seen.extend(rest)

    senders = [eventlet.spawn(send, outbox) for outbox in instances]
    reader = eventlet.spawn(read)
    pool = eventlet.GreenPool(20)
    for number in range(150):
        pool.spawn(write, number)
    pool.waitall()
    writing = False
    for thread in [*senders, reader]:
        thread.wait()

    ids = [event["event_id"] for event in seen]
    assert len(ids) == len(set(ids))  # nothing twice
    assert set(ids) == set(written)  # nothing lost
    order = {(event["aggregate_id"], event["sequence"]): at for at, event in enumerate(seen)}
    for (customer, sequence), at in order.items():
        if sequence == 2:  # an aggregate's events are in the log in their order
            assert order[(customer, 1)] < at
    with database.session() as session:
        positions = session.scalars(select(OutboxEvent.log_position)).all()
    assert None not in positions and len(set(positions)) == len(positions)
