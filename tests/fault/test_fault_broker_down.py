"""RabbitMQ goes away while client apps keep writing through the gateway, and comes back:
every write the gateway acknowledged is kept, every refused one was refused clearly and
can be sent again, and every event reaches the views."""

import pytest
import requests

from tests.support.http import Client
from tests.support.records import customer_ids
from tests.support.waiting import wait_for
from tests.support.writers import Writers

pytestmark = [pytest.mark.fault, pytest.mark.parametrize("db_kind", ["postgres"])]


def test_writes_through_a_broker_outage_are_kept_or_refused_clearly_and_reach_the_views(
    crm_config, processes, make_broker_proxy
):
    """Simulates a RabbitMQ stop and start: the gateway and every service reach the broker
    through one proxy, and killing the proxy closes all their connections at once and
    refuses new ones, which is what clients of a stopped broker see; starting it on the
    same port is the broker coming back. The shared broker and its queues stay up, as a
    restarted broker keeps its durable queues and persistent messages."""
    proxy = make_broker_proxy()
    base_url = processes.start_system(CRM_AMQP_URI=proxy.uri, CRM_RATE_LIMIT_PER_MINUTE=0)
    client = Client(base_url)

    with Writers(base_url) as writers:
        wait_for(lambda: writers.seen(201) >= 6, timeout=30, message="writes before the outage")
        proxy.cut()
        wait_for(lambda: writers.seen(503) >= 6, timeout=30, message="writes refused with 503")
        assert requests.get(f"{base_url}/ready", timeout=10).status_code == 503
        before = writers.seen(201)
        proxy.start()
        wait_for(
            lambda: writers.seen(201) >= before + 6,
            timeout=60,
            message="writes acknowledged again once the broker is back",
        )
    # During the outage a write was answered 201 or a clear 503, never a 500 or no answer.
    assert writers.statuses() <= {201, 503}, writers.statuses()

    # A refused write sent again with its key runs now, or names the customer its first
    # try made when only the answer was lost: a client that retries loses nothing.
    writers.retry_refused()
    assert {write.status for write in writers.writes} <= {201, 409}
    acknowledged = writers.customer_ids()
    assert len(acknowledged) == len(writers.writes)
    stored = customer_ids(crm_config)
    assert sorted(stored) == sorted(set(acknowledged.values()))
    assert len(stored) == len(writers.writes)

    def report_total():
        response = client.get("/api/v1/reports/customers")
        return response.status_code == 200 and response.json()["total"] == len(stored)

    wait_for(report_total, timeout=60, message=f"{len(stored)} customers in the report")
    # Nothing had to be restarted: every process lived through the outage.
    for name in list(processes.running):
        processes.alive(name)
