"""Event streams as a broker may deliver them, and a look at what a consumer made of them."""

import random

from kombu import Connection, Exchange, Producer
from sqlalchemy import create_engine

from crm_common.config import db_url_key
from crm_common.envelope import make_envelope


def customer_created(customer_id="c-1", status="lead", owner="sam"):
    """A customer_created event as the customers service publishes it."""
    return make_envelope(
        event_type="customer_created",
        producer="customers",
        aggregate_id=customer_id,
        sequence=1,
        data={
            "customer_id": customer_id,
            "status": status,
            "owner": owner,
            "created_at": "2026-01-31T12:00:00+00:00",
            "name": "Ada",
        },
    )


def publish(config, body, exchange="customers.events", routing_key="customer_created"):
    """Put `body` on a producer's exchange as its outbox would (or as a stranger might)."""
    with Connection(config["AMQP_URI"]) as connection:
        Producer(connection).publish(
            body,
            exchange=Exchange(exchange, type="topic", durable=True),
            routing_key=routing_key,
            serializer="json",
        )


def db_scalar(config, service, statement):
    """One value read from `service`'s own database, past the service."""
    engine = create_engine(config[db_url_key(service)])
    try:
        with engine.connect() as connection:
            return connection.scalar(statement)
    finally:
        engine.dispose()


def shuffled_with_repeats(ordered, seed):
    """`ordered` shuffled, half of its events twice, as a broker may deliver it."""
    rng = random.Random(seed)
    shuffled = ordered + rng.sample(ordered, k=len(ordered) // 2)
    rng.shuffle(shuffled)
    return shuffled


def as_delivered(ordered, seed):
    """shuffled_with_repeats as the views see it: the inbox lets each event_id through
    once, so a repeat never reaches a view."""
    seen = set()
    for event in shuffled_with_repeats(ordered, seed):
        if event["event_id"] not in seen:
            seen.add(event["event_id"])
            yield event
