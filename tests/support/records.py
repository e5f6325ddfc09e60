"""What a service has stored, read straight from its database: the ground truth a fault
test holds the acknowledged writes and the views against."""

from sqlalchemy import select

from crm_common.config import db_url_key
from services.customers.models import Customer, OutboxEvent
from tests.support.fakes import database_for


def _rows(config, statement, scalars=False):
    database = database_for(config[db_url_key("customers")])
    try:
        with database.session() as session:
            result = session.execute(statement)
            return result.scalars().all() if scalars else result.all()
    finally:
        database.engine.dispose()


def customer_ids(config):
    """The ids of every customer row in the customers database."""
    return _rows(config, select(Customer.id), scalars=True)


def customer_outbox(config):
    """(event_id, aggregate_id, published_at) of every row of the customers outbox, in order."""
    return _rows(
        config,
        select(OutboxEvent.event_id, OutboxEvent.aggregate_id, OutboxEvent.published_at).order_by(
            OutboxEvent.id
        ),
    )
