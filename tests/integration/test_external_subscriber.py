"""examples/subscriber.py, a subscriber with a plain AMQP client, against the real services.

It reads the history it missed, gets live events on its own durable queue,
applies each event_id once, rides out a cut connection and a restart, and
every event it gets is one the published catalog (docs/asyncapi.yaml) describes.
"""

import json
import signal
import sqlite3
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

import pytest
from kombu import Connection, Exchange

from tests.support.catalog import ROOT, load_document, payload_validator
from tests.support.http import created
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import free_port, wait_for

QUEUE = "billing.crm-events"
BINDINGS = (
    "customers.events:customer_created",
    "pipeline.events:deal_won",
    "interactions.events:#",
)


class Subscriber:
    """The example as its own process, its JSON lines collected from a file."""

    def __init__(self, amqp_uri, tmp_path):
        self.amqp_uri = amqp_uri
        self.state = tmp_path / "subscriber.db"
        self.output = tmp_path / "subscriber.out"
        self.log = tmp_path / "subscriber.log"
        self.process = None

    def start(self):
        binds = [arg for bind in BINDINGS for arg in ("--bind", bind)]
        # The log is appended to: a restart is ready at its own "consuming from" line,
        # once its history is read (not at the first run's).
        started = self.consuming()
        with open(self.output, "a") as out, open(self.log, "a") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(ROOT / "examples/subscriber.py"), "--amqp-uri",
                 self.amqp_uri, "--queue", QUEUE, "--state", str(self.state), *binds],
                stdout=out, stderr=log,
            )  # fmt: skip
        wait_for(lambda: self.consuming() > started, timeout=30, message="subscriber")

    def consuming(self):
        return self.log.read_text().count("consuming from") if self.log.exists() else 0

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=15)
        assert self.process.returncode == 0, self.log.read_text()[-2000:]

    def lines(self):
        return [json.loads(line) for line in self.output.read_text().splitlines() if line]

    def wait_for_event(self, event_type, aggregate_id, source):
        def arrived():
            return [
                line
                for line in self.lines()
                if (line["event_type"], line["aggregate_id"]) == (event_type, aggregate_id)
            ]

        found = wait_for(arrived, timeout=30, message=f"{event_type} of {aggregate_id}")
        assert [line["source"] for line in found] == [source], found
        return found[0]

    def stored(self):
        with sqlite3.connect(self.state) as db:
            return [json.loads(body) for (body,) in db.execute("SELECT body FROM events")]


def with_port(amqp_uri, port):
    parts = urlsplit(amqp_uri)
    return urlunsplit(parts._replace(netloc=f"{parts.username}:{parts.password}@127.0.0.1:{port}"))


@pytest.fixture
def broker_proxy(crm_config):
    target = urlsplit(crm_config["CRM_AMQP_URI"])
    proxy = TcpProxy(free_port(), target.hostname, target.port or 5672)
    proxy.start()
    yield proxy
    proxy.cut()


def test_an_external_subscriber_gets_history_and_live_events_once_through_cuts(
    client, crm_config, broker_proxy, tmp_path
):
    def new_customer(name):
        return created(client.post("/api/v1/customers", {"name": name}))["id"]

    before = new_customer("Before Subscribing")
    subscriber = Subscriber(with_port(crm_config["CRM_AMQP_URI"], broker_proxy.args[0]), tmp_path)
    subscriber.start()
    try:
        subscriber.wait_for_event("customer_created", before, "history")

        # Live: a customer, a won deal, a complaint and its ticket, through the durable queue.
        live = new_customer("Live Customer")
        subscriber.wait_for_event("customer_created", live, "queue")
        deal_body = {"customer_id": live, "title": "Plan", "amount": "900", "currency": "EUR"}
        deal = created(client.post("/api/v1/deals", deal_body))
        assert client.post(f"/api/v1/deals/{deal['id']}/won", {}).status_code == 200
        complaint = {"customer_id": live, "kind": "complaint", "text": "Slow"}
        feedback = created(client.post("/api/v1/feedback", complaint))
        ticket_id = feedback["ticket"]["id"]
        subscriber.wait_for_event("deal_won", deal["id"], "queue")
        subscriber.wait_for_event("feedback_received", feedback["id"], "queue")
        subscriber.wait_for_event("ticket_opened", ticket_id, "queue")
        assert client.patch(f"/api/v1/customers/{live}", {"company": "Acme"}).status_code == 200

        # The connection is cut: what is published meanwhile waits in the queue.
        broker_proxy.cut()
        while_cut = new_customer("While Cut")
        broker_proxy.start()
        subscriber.wait_for_event("customer_created", while_cut, "queue")

        # Delivered twice (as at-least-once delivery may), and a body that is no event.
        [first] = [body for body in subscriber.stored() if body["aggregate_id"] == live
                   and body["event_type"] == "customer_created"]  # fmt: skip
        with Connection(crm_config["CRM_AMQP_URI"]) as connection:
            producer = connection.Producer()
            exchange = Exchange("customers.events", type="topic", durable=True)
            producer.publish(first, exchange=exchange, routing_key="customer_created",
                             serializer="json", delivery_mode=2)  # fmt: skip
            producer.publish({"not": "an event"}, exchange=exchange,
                             routing_key="customer_created", serializer="json")  # fmt: skip
        after_duplicate = new_customer("After Duplicate")
        subscriber.wait_for_event("customer_created", after_duplicate, "queue")
        assert "not an event envelope" in subscriber.log.read_text()

        # Stopped, then started again: the history from its cursor brings what came meanwhile,
        # and the queue's copy of it (and of what it had) is applied no second time.
        subscriber.stop()
        while_stopped = new_customer("While Stopped")
        subscriber.start()
        subscriber.wait_for_event("customer_created", while_stopped, "history")
        last = new_customer("Last")
        subscriber.wait_for_event("customer_created", last, "queue")
    finally:
        subscriber.stop()

    lines = subscriber.lines()
    event_ids = [line["event_id"] for line in lines]
    assert len(event_ids) == len(set(event_ids)), "an event was applied twice"
    # Only what it bound: no customer_updated, no deal_created.
    assert {line["event_type"] for line in lines} == {
        "customer_created", "deal_won", "feedback_received", "ticket_opened"
    }  # fmt: skip
    customers = [line["aggregate_id"] for line in lines if line["event_type"] == "customer_created"]
    assert sorted(customers) == sorted(
        [before, live, while_cut, after_duplicate, while_stopped, last]
    )

    # Every event it got is as the published catalog describes it, with no field left unnamed.
    document = load_document()
    stored = subscriber.stored()
    assert len(stored) == len(lines)
    for body in stored:
        errors = list(
            payload_validator(document, body["event_type"], closed=True).iter_errors(body)
        )
        assert not errors, (body["event_type"], [error.message for error in errors])
