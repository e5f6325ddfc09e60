"""Publish a batch of events with one wait for the broker's confirms.

Nameko's publisher waits for the broker's confirm of each message before it
sends the next: a broker round trip per event, and a kombu producer taken
from its pool, an `ensure` wrapper and a retry policy set up each time. The
outbox sends what several workers committed at once, so it puts one channel
in confirm mode, publishes the whole batch (persistent, as Nameko's
`EventDispatcher` does: same exchange, routing key, serializer), then waits
once: the broker confirms each message after it is safely queued, and an
event is marked published only when its own confirm is in.

One connection, used by one greenthread at a time (a lock sees to it); it is
opened on first use and dropped on any error, to be opened again next time.
"""

import logging

from eventlet.semaphore import Semaphore
from kombu import Connection, Producer

log = logging.getLogger(__name__)

# How long a batch may wait for its confirms before it counts as not sent (the
# relay sends it again later), and how long a connection may take to open.
CONFIRM_TIMEOUT_SECONDS = 5
CONNECT_TIMEOUT_SECONDS = 1


class BatchPublisher:
    def __init__(self, amqp_uri, serializer="json", ssl=None, login_method=None):
        self.amqp_uri = amqp_uri
        self.serializer = serializer
        self.ssl = ssl
        self.login_method = login_method
        self.lock = Semaphore()
        self.connection = None
        self.channel = None
        self.producer = None
        self.next_tag = 1
        # The batch being published: its delivery tags, those not yet confirmed or
        # refused, and those confirmed.
        self.batch, self.unsettled, self.acked = [], set(), set()

    def publish_many(self, bodies, exchange):
        """Publish `bodies` (JSON-able dicts with an `event_type`) to `exchange` in order.

        Answers (how many of the first bodies the broker confirmed, the error that
        stopped the rest or None): what is not confirmed must be sent again.
        """
        if not bodies:
            return 0, None
        with self.lock:
            self.batch, self.unsettled, self.acked = [], set(), set()
            try:
                self._publish(bodies, exchange)
            except Exception as exc:  # noqa: BLE001  the broker's and the socket's alike
                self.close()
                return self._confirmed_prefix(), exc
            return self._confirmed_prefix(), None

    def _publish(self, bodies, exchange):
        if self.producer is None:
            self._open()
        for body in bodies:
            self.producer.publish(
                body,
                exchange=exchange,
                routing_key=body["event_type"],
                serializer=self.serializer,
                delivery_mode=2,
                retry=False,
                declare=[exchange],
            )
            self.batch.append(self.next_tag)
            self.unsettled.add(self.next_tag)
            self.next_tag += 1
        while self.unsettled:
            self.connection.drain_events(timeout=CONFIRM_TIMEOUT_SECONDS)

    def _open(self):
        self.connection = Connection(
            self.amqp_uri,
            ssl=self.ssl,
            login_method=self.login_method,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
        )
        # One attempt: a broker out of reach leaves the batch to the relay, at once.
        self.connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0)
        self.channel = self.connection.channel()
        self.channel.events["basic_ack"].add(self._on_ack)
        self.channel.events["basic_nack"].add(self._on_nack)
        self.channel.confirm_select()
        # Delivery tags number the channel's publishes from 1 once confirms are on.
        self.next_tag = 1
        self.producer = Producer(self.channel)

    def _on_ack(self, delivery_tag, multiple):
        settled = self._settled_by(delivery_tag, multiple)
        self.acked |= settled
        self.unsettled -= settled

    def _on_nack(self, delivery_tag, multiple):
        # The broker lost it: left unconfirmed, it stays in the outbox for the relay.
        self.unsettled -= self._settled_by(delivery_tag, multiple)

    def _settled_by(self, delivery_tag, multiple):
        if multiple:
            return {tag for tag in self.unsettled if tag <= delivery_tag}
        return {delivery_tag}

    def _confirmed_prefix(self):
        """How many of the batch, from its first, the broker confirmed without a gap."""
        count = 0
        for tag in self.batch:
            if tag not in self.acked:
                break
            count += 1
        return count

    def close(self):
        connection, self.connection, self.channel, self.producer = self.connection, None, None, None
        if connection is not None:
            try:
                connection.close()
            except Exception as exc:  # noqa: BLE001  it is broken already
                log.debug("closing a broken publisher connection: %s", exc)
