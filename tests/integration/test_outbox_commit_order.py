"""PostgreSQL: outbox ids follow commit order, so a reader of the event log following its
cursor never passes an event that commits late (crm_common/outbox.py)."""

import eventlet
import pytest
from sqlalchemy import select

from crm_common.outbox import OutboxWriter
from services.customers import domain
from services.customers.events import CATALOG
from services.customers.models import OutboxEvent
from tests.support.fakes import bound_outbox, database_for


def created(customer_id):
    return domain.new_profile(
        customer_id=customer_id, name="Ada", created_at="2026-01-31T12:00:00+00:00"
    )


@pytest.fixture
def database(make_db_url):
    database = database_for(make_db_url("postgres", "customers", schema="customers"))
    yield database
    database.engine.dispose()


@pytest.mark.parametrize("events", [1, 3])
def test_a_writer_waits_for_an_earlier_uncommitted_event_and_numbers_after_it(database, events):
    writer = OutboxWriter(bound_outbox(OutboxEvent, CATALOG, database), [])
    first, second = database.session(), database.session()
    try:
        writer.add(first, "customer_created", "c-first", 1, created("c-first"))

        def write_second():
            writer.add_many(
                second,
                [("customer_created", f"c-{n}", 1, created(f"c-{n}")) for n in range(events)],
            )
            second.commit()

        later = eventlet.spawn(write_second)
        eventlet.sleep(0.5)
        assert not later.dead  # held until the first commits: it cannot number before it
        first.commit()
        later.wait()
    finally:
        first.close()
        second.close()
    with database.session() as session:
        order = session.scalars(select(OutboxEvent.aggregate_id).order_by(OutboxEvent.id)).all()
    assert order == ["c-first", *(f"c-{n}" for n in range(events))]
