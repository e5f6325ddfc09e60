"""The outbox's publisher against the real broker: a batch arrives whole, persistent and in
order, and a broker it cannot reach confirms nothing (so the relay sends it all again)."""

import uuid

from kombu import Connection, Exchange, Queue

from crm_common.batch_publish import BatchPublisher


def events(count):
    return [
        {"event_id": str(uuid.uuid4()), "event_type": f"thing_{n % 2}", "n": n}
        for n in range(count)
    ]


def bound_queue(connection, exchange):
    queue = Queue(f"test-batch-{uuid.uuid4().hex[:8]}", exchange, routing_key="#", durable=True)
    bound = queue(connection.default_channel)
    bound.declare()
    return bound


def drain(queue):
    received = []
    while (message := queue.get(no_ack=True)) is not None:
        received.append(message)
    return received


def test_a_batch_is_confirmed_whole_and_arrives_persistent_in_order(crm_config):
    exchange = Exchange("batchtest.events", type="topic", durable=True)
    publisher = BatchPublisher(crm_config["AMQP_URI"])
    with Connection(crm_config["AMQP_URI"]) as connection:
        exchange(connection.default_channel).declare()
        queue = bound_queue(connection, exchange)
        first, second = events(120), events(3)
        try:
            assert publisher.publish_many(first, exchange) == (120, None)
            # The channel's delivery tags go on counting: the next batch is confirmed too.
            assert publisher.publish_many(second, exchange) == (3, None)
        finally:
            publisher.close()
        received = drain(queue)
    assert [message.payload for message in received] == first + second
    assert {message.delivery_info["routing_key"] for message in received} == {"thing_0", "thing_1"}
    assert {message.properties["delivery_mode"] for message in received} == {2}
    assert {message.content_type for message in received} == {"application/json"}


def test_a_broker_out_of_reach_confirms_nothing_and_the_next_batch_reconnects(
    crm_config, make_broker_proxy
):
    exchange = Exchange("batchtest.events", type="topic", durable=True)
    proxy = make_broker_proxy()
    publisher = BatchPublisher(proxy.uri)
    try:
        assert publisher.publish_many(events(2), exchange) == (2, None)
        proxy.cut()
        count, error = publisher.publish_many(events(5), exchange)
        assert (count, error is not None) == (0, True)
        proxy.start()
        assert publisher.publish_many(events(4), exchange) == (4, None)
    finally:
        publisher.close()
