"""An external subscriber of the CRM's events, written with a plain AMQP client (kombu), no Nameko.

It keeps a local copy of the events it wants in a SQLite file, as a billing
or analytics service of another team might:

- declares its own durable queue and binds it to the producers' topic
  exchanges (`<service>.events`), one binding per routing key (= event type);
- reads the history from before its queue existed from each producer's log
  (`events_since`, Nameko's RPC spoken over AMQP by hand) and keeps a cursor
  per producer, so a restart reads only what is new;
- de-duplicates on `event_id` (delivery is at least once, and the history and
  the queue overlap) in the same SQLite transaction as the effect, and
  acknowledges a message only after that commit;
- keeps the newest `sequence` per aggregate, so an older event arriving late
  does not overwrite a newer state;
- reconnects after a broker restart or a cut connection (kombu's
  ConsumerMixin); the durable queue keeps what arrives meanwhile.

    python examples/subscriber.py --queue billing.crm-events \\
        --bind customers.events:customer_created --bind pipeline.events:deal_won \\
        --state billing-events.db

Each event applied is printed as one JSON line: {"event_id", "event_type",
"producer", "aggregate_id", "sequence", "source" (queue or history)}.
Only the standard library and kombu; `CRM_AMQP_URI` names the broker.
"""

import argparse
import json
import logging
import os
import signal
import sqlite3
import sys
import uuid

from kombu import Connection, Consumer, Exchange, Producer, Queue, binding
from kombu.mixins import ConsumerMixin

log = logging.getLogger("subscriber")

RPC_EXCHANGE = Exchange("nameko-rpc", type="topic", durable=True)
HISTORY_PAGE = 500
RPC_TIMEOUT_SECONDS = 30
ENVELOPE_FIELDS = ("event_id", "event_type", "producer", "aggregate_id", "sequence", "data")

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    event_id TEXT PRIMARY KEY, event_type TEXT NOT NULL, producer TEXT NOT NULL,
    aggregate_id TEXT NOT NULL, sequence INTEGER NOT NULL, body TEXT NOT NULL,
    source TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS latest (
    producer TEXT NOT NULL, aggregate_id TEXT NOT NULL, sequence INTEGER NOT NULL,
    event_type TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (producer, aggregate_id)
);
CREATE TABLE IF NOT EXISTS cursors (producer TEXT PRIMARY KEY, cursor TEXT NOT NULL);
"""


class Store:
    """The subscriber's own database: what it applied, the newest state, history cursors."""

    def __init__(self, path):
        self.db = sqlite3.connect(path)
        self.db.executescript(SCHEMA)

    def apply(self, body, source):
        """Apply one event once; False when its event_id was applied before."""
        with self.db:  # one transaction: the effect and the record of the event_id
            inserted = self.db.execute(
                "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    body["event_id"],
                    body["event_type"],
                    body["producer"],
                    body["aggregate_id"],
                    body["sequence"],
                    json.dumps(body),
                    source,
                ),
            ).rowcount
            if inserted:
                # Order holds within an aggregate only by `sequence`, not by arrival.
                self.db.execute(
                    "INSERT INTO latest VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (producer, aggregate_id) DO UPDATE SET "
                    "sequence = excluded.sequence, event_type = excluded.event_type, "
                    "data = excluded.data WHERE excluded.sequence > latest.sequence",
                    (
                        body["producer"],
                        body["aggregate_id"],
                        body["sequence"],
                        body["event_type"],
                        json.dumps(body["data"]),
                    ),
                )
        return bool(inserted)

    def cursor(self, producer):
        row = self.db.execute(
            "SELECT cursor FROM cursors WHERE producer = ?", (producer,)
        ).fetchone()
        return row[0] if row else None

    def save_cursor(self, producer, cursor):
        with self.db:
            self.db.execute(
                "INSERT INTO cursors VALUES (?, ?) "
                "ON CONFLICT (producer) DO UPDATE SET cursor = excluded.cursor",
                (producer, cursor),
            )


def is_envelope(body):
    return isinstance(body, dict) and all(field in body for field in ENVELOPE_FIELDS)


def parse_binding(text):
    """`customers.events:customer_created` -> (exchange, routing key)."""
    exchange, sep, routing_key = text.partition(":")
    if not sep or not exchange.endswith(".events") or not routing_key:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give EXCHANGE:ROUTING_KEY, e.g. customers.events:customer_created"
        )
    return exchange, routing_key


def queue_for(name, bindings):
    """A durable queue of our own, bound once per (exchange, routing key)."""
    return Queue(
        name,
        durable=True,
        bindings=[
            binding(Exchange(exchange, type="topic", durable=True), routing_key=key)
            for exchange, key in bindings
        ],
    )


def matches(event_type, pattern):
    """Whether a binding key takes an event type; event types have no dots, so `*` is `#`."""
    return pattern in ("#", "*", event_type)


def call_rpc(connection, service, method, *args):
    """Call a Nameko RPC method over plain AMQP: the request and reply as Nameko sends them."""
    reply_key = str(uuid.uuid4())
    correlation_id = str(uuid.uuid4())
    # A reply queue of our own, bound to the RPC exchange by its name; gone when we are.
    reply_queue = Queue(
        f"rpc.reply-external-{reply_key}",
        RPC_EXCHANGE,
        routing_key=reply_key,
        exclusive=True,
        auto_delete=True,
    )
    replies = []
    with connection.channel() as channel:
        with Consumer(
            channel,
            [reply_queue],
            callbacks=[lambda body, message: (replies.append(body), message.ack())],
            accept=["json"],
        ):
            Producer(channel).publish(
                {"args": list(args), "kwargs": {}},
                exchange=RPC_EXCHANGE,
                routing_key=f"{service}.{method}",
                serializer="json",
                reply_to=reply_key,
                correlation_id=correlation_id,
                declare=[RPC_EXCHANGE],
                mandatory=True,
            )
            while not replies:
                try:
                    connection.drain_events(timeout=RPC_TIMEOUT_SECONDS)
                except TimeoutError:
                    raise RuntimeError(
                        f"{service} did not answer {method}; is it running?"
                    ) from None
    reply = replies[0]
    if reply.get("error"):
        raise RuntimeError(f"{service}.{method} failed: {reply['error']}")
    return reply["result"]


def read_history(connection, store, bindings, echo):
    """Everything each producer logged since our cursor, through the same de-duplication."""
    for producer in sorted({exchange.removesuffix(".events") for exchange, _ in bindings}):
        patterns = [key for exchange, key in bindings if exchange == f"{producer}.events"]
        cursor = store.cursor(producer)
        while True:
            page = call_rpc(connection, producer, "events_since", cursor, HISTORY_PAGE)
            for body in page["events"]:
                if any(matches(body["event_type"], pattern) for pattern in patterns):
                    if store.apply(body, "history"):
                        echo(body, "history")
            if not page["events"]:
                break
            cursor = page["next_cursor"]
            store.save_cursor(producer, cursor)


class Subscriber(ConsumerMixin):
    def __init__(self, connection, queue, store, echo):
        self.connection = connection
        self.queue = queue
        self.store = store
        self.echo = echo

    def get_consumers(self, Consumer, channel):
        # Declared again on each reconnect: a broker restarted without its data gets it back.
        return [
            Consumer([self.queue], callbacks=[self.on_message], accept=["json"], prefetch_count=50)
        ]

    def on_message(self, body, message):
        if not is_envelope(body):
            log.warning("dropping a message that is not an event envelope: %.200r", body)
            message.reject()
            return
        if self.store.apply(body, "queue"):
            self.echo(body, "queue")
        message.ack()  # after the commit: a crash before it gets the message again

    def on_connection_error(self, exc, interval):
        log.warning("broker connection lost (%s); again in %s s", exc, interval)

    def on_connection_revived(self):
        log.info("connected to the broker")


def echo_line(body, source):
    line = {field: body[field] for field in ENVELOPE_FIELDS if field != "data"}
    print(json.dumps({**line, "source": source}), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--amqp-uri",
        default=os.environ.get("CRM_AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/"),
    )
    parser.add_argument("--queue", required=True, help="the name of our durable queue")
    parser.add_argument(
        "--bind",
        action="append",
        required=True,
        type=parse_binding,
        metavar="EXCHANGE:ROUTING_KEY",
        help="e.g. customers.events:customer_created, or interactions.events:# for all",
    )
    parser.add_argument("--state", required=True, help="the SQLite file of what was applied")
    parser.add_argument(
        "--no-history", action="store_true", help="only what reaches the queue from now on"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    store = Store(args.state)
    queue = queue_for(args.queue, args.bind)
    with Connection(args.amqp_uri, heartbeat=10) as connection:
        connection.ensure_connection(max_retries=10)
        # Bind first, then read the history: what is published in between is in both,
        # and the event_id check applies it once.
        queue(connection.default_channel).declare()
        if not args.no_history:
            read_history(connection, store, args.bind, echo_line)
        subscriber = Subscriber(connection, queue, store, echo_line)
        signal.signal(signal.SIGTERM, lambda *_: setattr(subscriber, "should_stop", True))
        log.info("consuming from %s", args.queue)
        try:
            subscriber.run()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
