"""The reports backlog's Nameko baseline: a bare `@event_handler` that does nothing.

    python -m bench.bare_events   (with the environment a `crm run reports` would get)

It runs in a process of its own with the same green sockets, the same config
and the same worker limit as reports, so the gap between its rate and the
reports' on a backlog is what reports add to Nameko's own cost per message,
and the gap between it and raw kombu consume + ack is Nameko's.
"""

import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import time  # noqa: E402

from kombu import Connection, Exchange, Queue  # noqa: E402
from nameko.cli.run import run as run_services  # noqa: E402
from nameko.events import event_handler  # noqa: E402

from crm_common import logs  # noqa: E402
from crm_common.config import for_process, from_env  # noqa: E402

SOURCE = "bench_bare_source"
EVENT_TYPE = "bare_event"
SERVICE = "bench_bare_events"
METHOD = "consume"
# Nameko's name of the handler's queue (evt-<source>-<type>--<service>.<method>).
QUEUE = f"evt-{SOURCE}-{EVENT_TYPE}--{SERVICE}.{METHOD}"


class BareEvents:
    name = SERVICE

    @event_handler(SOURCE, EVENT_TYPE)
    def consume(self, body):
        pass


def waiting(amqp_uri):
    """Messages ready in the handler's queue (None before the service declared it)."""
    with Connection(amqp_uri) as connection:
        try:
            _, count, _ = Queue(QUEUE).bind(connection.default_channel).queue_declare(passive=True)
        except connection.channel_errors:
            return None
    return count


def publish(amqp_uri, count):
    """`count` events of about an event envelope's size, persistent, for the handler."""
    exchange = Exchange(f"{SOURCE}.events", type="topic", durable=True)
    body = {"event_type": EVENT_TYPE, "payload": "x" * 400}
    with Connection(amqp_uri) as connection:
        producer = connection.Producer()
        for _ in range(count):
            producer.publish(
                body,
                exchange=exchange,
                routing_key=EVENT_TYPE,
                serializer="json",
                delivery_mode=2,
                declare=[exchange],
            )


def drain_rate(services, amqp_uri, count, timeout=120):
    """Events per second the bare handler takes from a backlog of `count`: published while
    it is stopped (its queue declared by a first start), timed from the first taken to the
    last, as the reports' backlog is."""
    services.start("bare_events", module="bench.bare_events")
    try:
        deadline = time.monotonic() + timeout
        while waiting(amqp_uri) is None:
            assert time.monotonic() < deadline, "the bare handler never declared its queue"
            time.sleep(0.1)
    finally:
        services.stop("bare_events")
    publish(amqp_uri, count)
    services.start("bare_events", module="bench.bare_events")
    try:
        deadline = time.monotonic() + timeout
        while waiting(amqp_uri) >= count:
            assert time.monotonic() < deadline, "the bare handler took nothing"
            time.sleep(0.005)
        first, started = count - waiting(amqp_uri), time.perf_counter()
        while (left := waiting(amqp_uri)) > 0:
            assert time.monotonic() < deadline, "the bare handler did not finish"
            time.sleep(0.02)
        # Ready messages gone: the last prefetched ones are in its workers, acked at once.
        return (count - first - left) / (time.perf_counter() - started)
    finally:
        services.stop("bare_events")


def main():
    config = from_env()
    logs.configure(SERVICE, config["CRM_LOG_LEVEL"])
    run_services([BareEvents], for_process(config, "reports"))


if __name__ == "__main__":
    main()
