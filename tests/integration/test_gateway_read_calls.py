"""The gateway's reads go to a service without a publisher confirm (gateway/remote.py)."""

import time
import warnings

import pytest
from kombu import Connection, Exchange, Queue
from nameko.amqp.publish import Publisher
from nameko.constants import NON_PERSISTENT
from nameko.rpc import RpcProxy, get_rpc_exchange, rpc
from nameko.standalone.rpc import ClusterRpcProxy

from crm_common.asking import expiring
from crm_common.rpc import UnconfirmedPublisher
from gateway.http import ApiError
from gateway.remote import call
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
