"""A service that stops sends what its workers committed first.

Outbox.stop() says so ("what they committed goes out before the process does"), but
the sender greenthread may hold a round it took from the queue: stop() finds the
queue empty, closes the publisher under that round and returns, and the container
then kills its managed threads. The round's events stay unsent and unmarked until
some instance's relay runs again (a restart of a lone instance).
"""

import eventlet
import eventlet.event
from sqlalchemy import select

from services.customers import domain
from services.customers.events import CATALOG
from services.customers.models import OutboxEvent
from tests.support.fakes import FakePublisher, bound_outbox, database_for


def created(customer_id):
    return domain.new_profile(
        customer_id=customer_id, name="Ada", created_at="2026-01-31T12:00:00+00:00"
    )


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


def test_stop_sends_the_round_the_sender_holds_before_it_returns(make_db_url):
    database = database_for(make_db_url("sqlite", "customers", schema="customers"))
    outbox = bound_outbox(OutboxEvent, CATALOG, database)
    outbox.publisher = broker = SlowBroker()
    worker_ctx = object()
    writer = outbox.get_dependency(worker_ctx)
    with database.session() as session:
        writer.add(session, "customer_created", "c-1", 1, created("c-1"))
        session.commit()
    outbox.worker_result(worker_ctx)
    outbox.worker_teardown(worker_ctx)
    sender = eventlet.spawn(outbox.send_committed)
    eventlet.sleep(0)  # the sender takes the round and waits for its confirms

    stopping = eventlet.spawn(outbox.stop)
    eventlet.sleep(0.2)
    stopped_early = stopping.dead
    broker.confirms.send()  # the broker confirms
    stopping.wait()
    sender.kill()  # the container kills its managed threads once its extensions stopped

    with database.session() as session:
        published = session.scalars(select(OutboxEvent.published_at)).all()
    assert not stopped_early, "stop() returned while the sender's round was in flight"
    assert published != [None]
