"""The gateway's reads go to a service without a publisher confirm (gateway/remote.py)."""

import time
import warnings
from urllib.parse import quote, urlsplit

import eventlet
import pytest
import requests
from kombu import Connection, Exchange, Queue
from nameko.amqp.publish import Publisher
from nameko.constants import NON_PERSISTENT
from nameko.rpc import RpcProxy, get_rpc_exchange, rpc
from nameko.standalone.rpc import ClusterRpcProxy

from crm_common.asking import expiring
from crm_common.rpc import RpcProxy as GatewayRpcProxy
from crm_common.rpc import UnconfirmedPublisher
from gateway.http import ApiError
from gateway.remote import call
from tests.support.settings import RABBIT_API_URI
from tests.support.waiting import wait_for

TIMEOUT = 1.0


class Caller:
    """Calls `probe` as the gateway does: a read (unconfirmed) or a write (confirmed)."""

    name = "caller"
    probe = RpcProxy("probe")

    @rpc
    def ask(self, confirm):
        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            started = time.monotonic()
            try:
                answer = call(expiring(self.probe, TIMEOUT, confirm), "echo", "hi", timeout=TIMEOUT)
            except ApiError as exc:
                answer = {"status": exc.status, "message": exc.message}
        return {
            "answer": answer,
            "seconds": time.monotonic() - started,
            "warnings": [str(warning.message) for warning in warned],
        }


class Probe:
    name = "probe"

    @rpc
    def echo(self, word):
        return {"echo": word}


@pytest.fixture
def caller(rabbit_config, container_factory):
    container_factory(Caller, rabbit_config).start()
    with ClusterRpcProxy(rabbit_config) as cluster:
        yield cluster.caller


@pytest.mark.parametrize("confirm", [True, False])
def test_a_read_and_a_write_both_get_their_answer(
    rabbit_config, container_factory, caller, confirm
):
    container_factory(Probe, rabbit_config).start()
    asked = caller.ask(confirm)
    assert asked["answer"] == {"echo": "hi"}
    assert asked["warnings"] == []


def test_a_read_request_is_not_kept_on_disk_by_the_broker(rabbit_config, caller):
    """Nobody waits for the answer to a read after a broker restart: not persistent."""
    exchange = get_rpc_exchange(rabbit_config)
    queue = Queue("probe-requests", exchange=exchange, routing_key="probe.*", auto_delete=True)
    with Connection(rabbit_config["AMQP_URI"]) as connection:
        queue(connection.default_channel).declare()
        waiting = caller.ask.call_async(False)  # nobody answers: it times out
        # Taken while the caller waits: the request expires from the queue with its wait.
        message = wait_for(lambda: queue(connection.default_channel).get(no_ack=True))
        waiting.result()
    assert message.properties["delivery_mode"] == NON_PERSISTENT


def test_a_read_of_a_service_never_started_is_a_503_after_the_timeout(caller):
    """Without a confirm the broker's word that nobody listens is not read: the read
    waits its timeout out, quietly (no warning of the mandatory flag)."""
    asked = caller.ask(False)
    assert asked["answer"]["status"] == 503
    assert "did not answer" in asked["answer"]["message"]
    assert asked["seconds"] >= TIMEOUT
    assert asked["warnings"] == []


def test_a_write_to_a_service_never_started_is_a_503_at_once(caller):
    asked = caller.ask(True)
    assert asked["answer"] == {"status": 503, "message": "The probe service is not running."}
    assert asked["seconds"] < TIMEOUT


def test_an_unconfirmed_publish_leaves_confirmed_publishers_confirming(rabbit_config):
    """Nameko's publishers write their confirm setting into transport options the
    connections of their pools read when they connect: an unconfirmed one has its own."""
    UnconfirmedPublisher(rabbit_config["AMQP_URI"]).publish(
        "hello", exchange=Exchange("amq.direct"), routing_key="nobody-listens"
    )
    assert Publisher.transport_options.get("confirm_publish", True) is True


class ReplyTaker:
    """Calls `probe` as the gateway does, its replies taken without acknowledgements."""

    name = "reply_taker"
    probe = GatewayRpcProxy("probe")

    @rpc
    def ask_many(self, count, confirm):
        pool = eventlet.GreenPool()
        asked = expiring(self.probe, TIMEOUT * 5, confirm)
        return list(pool.imap(lambda n: call(asked, "echo", n, timeout=TIMEOUT * 5), range(count)))


def reply_consumers(amqp_uri):
    """(queue, ack_required) of every consumer of a reply queue in the vhost of `amqp_uri`."""
    vhost = quote(urlsplit(amqp_uri).path[1:], safe="")
    api = urlsplit(RABBIT_API_URI)
    found = requests.get(
        f"{api.scheme}://{api.hostname}:{api.port}/api/consumers/{vhost}",
        auth=(api.username, api.password),
        timeout=10,
    ).json()
    return [
        (consumer["queue"]["name"], consumer["ack_required"])
        for consumer in found
        if consumer["queue"]["name"].startswith("rpc.reply-reply_taker")
    ]


@pytest.mark.parametrize("confirm", [True, False])
def test_replies_taken_without_acknowledgements_each_reach_their_call(
    rabbit_config, container_factory, confirm
):
    """More calls at once than any prefetch allowed, each with its own answer; the reply
    queue's consumer acknowledges nothing (the management API shows it)."""
    container_factory(Probe, rabbit_config).start()
    container_factory(ReplyTaker, rabbit_config).start()
    with ClusterRpcProxy(rabbit_config) as cluster:
        answers = cluster.reply_taker.ask_many(100, confirm)
    assert answers == [{"echo": n} for n in range(100)]
    consumers = wait_for(lambda: reply_consumers(rabbit_config["AMQP_URI"]), timeout=10)
    assert [ack_required for _, ack_required in consumers] == [False]
