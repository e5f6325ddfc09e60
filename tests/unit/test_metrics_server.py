"""The /metrics server under eventlet: shared by the containers of a process, never fatal."""

import logging
import socket
import uuid
from types import SimpleNamespace

import pytest
import requests
from nameko.events import EventHandler
from prometheus_client.parser import text_string_to_metric_families

from crm_common import metrics
from crm_common.metrics import Metrics
from tests.support.waiting import free_port


def provider(port, service=None):
    """A Metrics provider wired as its container would wire it (no event handlers)."""
    metrics_provider = Metrics()
    metrics_provider.container = SimpleNamespace(
        service_name=service or f"test-{uuid.uuid4().hex[:8]}",
        config={"CRM_METRICS_HOST": "127.0.0.1", "CRM_METRICS_PORT": port, "AMQP_URI": ""},
        entrypoints=[],
    )
    metrics_provider.setup()
    return metrics_provider


def families(port):
    response = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert response.status_code == 200
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def refused(port):
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_containers_of_one_process_share_the_port_until_the_last_stops():
    port = free_port()
    first, second = provider(port), provider(port)
    first.start()
    second.start()
    assert "crm_http_requests" in families(port)
    first.stop()
    assert "crm_http_requests" in families(port)  # the second still serves
    second.stop()
    assert refused(port)


def test_port_zero_serves_nothing():
    quiet = provider(0)
    quiet.start()
    assert not quiet.serving
    quiet.stop()


def test_a_port_another_process_holds_is_logged_and_the_service_runs_on(caplog):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        second = provider(port)
        with caplog.at_level(logging.ERROR, logger="crm_common.metrics"):
            second.start()  # no exception: the service keeps running
        assert not second.serving
        assert f"cannot listen on 127.0.0.1:{port}" in caplog.text
        second.stop()


def test_a_reading_that_fails_leaves_the_others_in_the_scrape(caplog):
    port = free_port()
    owner = provider(port)
    owner.start()
    service = owner.container.service_name

    def broken():
        raise ConnectionError("database away")

    metrics.watch(owner, service, "crm_test_broken", "never read", broken)
    metrics.watch(owner, service, "crm_test_depth", "read", lambda: [({"queue": "q"}, 3)])
    try:
        with caplog.at_level(logging.WARNING, logger="crm_common.metrics"):
            scraped = families(port)
        assert "crm_test_broken" not in scraped
        [sample] = scraped["crm_test_depth"].samples
        assert sample.labels == {"service": service, "queue": "q"} and sample.value == 3
        assert "crm_test_broken" in caplog.text and "database away" in caplog.text
    finally:
        owner.stop()
    # Stopping forgets the container's readings.
    assert "crm_test_depth" not in {family.name for family in metrics.READINGS.collect()}


def test_queue_depth_is_watched_for_each_event_handler():
    handler = EventHandler("customers", "customer_created")
    handler.queue = SimpleNamespace(name="evt-customers-customer_created--reports.apply")
    watcher = provider(0)
    watcher.container.entrypoints = [handler]
    watcher.start()
    try:
        service = watcher.container.service_name
        owner, _, _ = metrics.READINGS.watched[(service, "crm_consumer_queue_messages")]
        assert owner is watcher
    finally:
        watcher.stop()
    assert (service, "crm_consumer_queue_messages") not in metrics.READINGS.watched


@pytest.mark.parametrize("outcome", ["ok", "Timeout"])
def test_timed_call_observes_by_outcome(outcome):
    proxy = SimpleNamespace(worker_ctx=SimpleNamespace(service_name=f"test-{outcome}"))
    target = f"target-{uuid.uuid4().hex[:8]}"

    class Timeout(BaseException):
        pass

    if outcome == "ok":
        with metrics.timed_call(proxy, target, "health"):
            pass
    else:
        with pytest.raises(Timeout), metrics.timed_call(proxy, target, "health"):
            raise Timeout()
    labels = {"service": f"test-{outcome}", "target": target, "method": "health"}
    count = metrics.REGISTRY.get_sample_value(
        "crm_rpc_call_duration_seconds_count", {**labels, "outcome": outcome}
    )
    assert count == 1
