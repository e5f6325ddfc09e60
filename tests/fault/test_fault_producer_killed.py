"""A producer killed with SIGKILL after its commit and before its publish: the event
still reaches its consumers, once, when the producer is started again."""

import uuid

import pytest
from kombu import Connection, Exchange, Queue
from nameko.standalone.rpc import ClusterRpcProxy

from services.reports.service import ReportsService
from tests.support.records import customer_outbox
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.fault, pytest.mark.parametrize("db_kind", ["postgres"])]


class EventTap:
    """A plain AMQP subscriber to one exchange: its own durable queue, bound to every key."""

    def __init__(self, amqp_uri, exchange):
        self.connection = Connection(amqp_uri)
        queue = Queue(
            f"fault-tap-{uuid.uuid4().hex[:8]}",
            Exchange(exchange, type="topic", durable=True),
            routing_key="#",
            durable=True,
        )
        self.queue = queue(self.connection.default_channel)
        self.queue.declare()
        self.bodies = []

    def event_ids(self):
        """Every event_id received so far, repeats included, in arrival order."""
        while (message := self.queue.get(no_ack=True)) is not None:
            self.bodies.append(message.payload)
        return [body["event_id"] for body in self.bodies]

    def close(self):
        self.connection.release()


@pytest.fixture
def tap(crm_config):
    tap = EventTap(crm_config["AMQP_URI"], "customers.events")
    yield tap
    tap.close()


def test_a_producer_killed_between_commit_and_publish_sends_the_event_once_on_restart(
    crm_config, processes, make_broker_proxy, runner_factory, tap
):
    """Simulates the crash window the outbox exists for: the customer row and its event row
    are committed, the RPC has answered, and the process dies while its publish is on the
    way. The customers process reaches the broker through a proxy that passes everything
    (its RPC consumer, its reply) but holds its first `basic.publish` to `customers.events`:
    the publisher is left waiting for a confirm, as when the broker is slow, and SIGKILL
    ends it there, so the broker never sees the event. It is faithful because nothing in
    the process is told or patched: the commit, the reply and the publish run as in
    production; only the bytes of the publish are held on the wire. Restarted (straight to
    the broker), its relay must publish the unsent row, once."""
    holding = make_broker_proxy(hold_exchange="customers.events")
    runner_factory(crm_config, ReportsService).start()
    processes.start("customers", CRM_AMQP_URI=holding.uri)
    processes.wait_answering(crm_config, "customers")

    with ClusterRpcProxy(crm_config, timeout=10) as rpc:
        customer = rpc.customers.create_customer({"name": "Ada Lovelace", "owner": "sam"})
        holding.expect("held customers.events", timeout=15)
        processes.kill("customers")

        [(event_id, aggregate_id, published_at)] = customer_outbox(crm_config)
        assert (aggregate_id, published_at) == (customer["id"], None)
        # The broker never saw it. (Reports may have it already: its catch-up reads the
        # producer's committed log, so it is not asked to be empty here; the end checks
        # that it counted the customer once.)
        assert tap.event_ids() == []

        processes.start("customers")
        wait_for(tap.event_ids, timeout=30, message="the relayed event")
        # A later event of the same producer arrives after any repeat of the first would.
        second = rpc.customers.create_customer({"name": "Grace Hopper", "owner": "kim"})
        wait_for(lambda: len(tap.event_ids()) >= 2, timeout=30, message="the second event")
        ids = tap.event_ids()
        assert ids.count(event_id) == 1
        assert [body["aggregate_id"] for body in tap.bodies] == [customer["id"], second["id"]]
        assert all(published is not None for _, _, published in customer_outbox(crm_config))

        wait_for(
            lambda: rpc.reports.customers_by_status_owner()["total"] == 2,
            timeout=30,
            message="both customers in the report",
        )
        report = rpc.reports.customers_by_status_owner()
    assert sorted((row["owner"], row["customers"]) for row in report["items"]) == [
        ("kim", 1),
        ("sam", 1),
    ]
