"""A service with batch handlers stopped while their queue consumer is still starting
(its RPC consumer may already answer) stops, instead of failing and hanging."""

import eventlet
from nameko.containers import ServiceContainer

from crm_common.handlers import BatchQueueConsumer, event_batch_handler


class Batches:
    name = "batches"

    @event_batch_handler("customers", "customer_created")
    def created(self, bodies):
        pass

    @event_batch_handler("customers", "customer_updated")
    def updated(self, bodies):
        pass


def test_a_service_stopped_while_its_batch_consumer_starts_stops(rabbit_config, monkeypatch):
    ready = BatchQueueConsumer.on_consume_ready

    def slow_ready(self, *args, **kwargs):
        eventlet.sleep(2)  # queues declared, consumers not yet marked ready
        return ready(self, *args, **kwargs)

    monkeypatch.setattr(BatchQueueConsumer, "on_consume_ready", slow_ready)
    container = ServiceContainer(Batches, rabbit_config)
    starting = eventlet.spawn(container.start)
    eventlet.sleep(0.5)
    with eventlet.Timeout(10, AssertionError("the container did not stop")):
        container.stop()
        starting.wait()
    assert container.started is False
