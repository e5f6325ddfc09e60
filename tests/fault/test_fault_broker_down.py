"""RabbitMQ goes away while client apps keep writing through the gateway, and comes back:
every write the gateway acknowledged is kept, every refused one was refused clearly and
can be sent again, and every event reaches the views."""

import pytest
import requests

from tests.support.http import Client
from tests.support.records import customer_ids
from tests.support.writers import assert_nothing_lost, write_through_outage

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

    def while_down():
        assert requests.get(f"{base_url}/ready", timeout=10).status_code == 503

    writers = write_through_outage(base_url, proxy.cut, proxy.start, while_down)
    assert_nothing_lost(writers, lambda: customer_ids(crm_config), client)
    # Nothing had to be restarted: every process lived through the outage.
    for name in list(processes.running):
        processes.alive(name)
