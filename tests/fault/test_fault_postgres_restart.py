"""PostgreSQL restarted while client apps keep writing: clear 503s while it is away, and
the system works again when it is back, with no process restarted and nothing lost."""

import pytest

from crm_common.config import SERVICES, db_url_key
from tests.support.http import Client, assert_error
from tests.support.records import customer_ids
from tests.support.waiting import wait_for
from tests.support.writers import Writers

pytestmark = pytest.mark.fault


def test_a_postgres_restart_under_load_gives_clear_503s_and_the_system_recovers_alone(
    crm_config, processes, private_postgres
):
    """Simulates an operator restarting PostgreSQL (`pg_ctl stop -m fast`, then start)
    under the system: every service keeps its databases in a cluster of the test's own,
    so the restart is a real one (sessions ended, connections refused, the same data
    after), while the machine's shared server is left alone."""
    databases = {
        db_url_key(name): private_postgres.create_database(f"crm_{name}") for name in SERVICES
    }
    base_url = processes.start_system(**databases, CRM_RATE_LIMIT_PER_MINUTE=0)
    client = Client(base_url)

    with Writers(base_url) as writers:
        wait_for(lambda: writers.seen(201) >= 6, timeout=30, message="writes before the restart")
        private_postgres.stop()
        wait_for(lambda: writers.seen(503) >= 6, timeout=30, message="writes refused with 503")
        assert_error(client.get("/api/v1/customers"), 503, "SERVICE_UNAVAILABLE")
        assert_error(client.get("/api/v1/reports/customers"), 503, "SERVICE_UNAVAILABLE")
        before = writers.seen(201)
        private_postgres.start()
        wait_for(
            lambda: writers.seen(201) >= before + 6,
            timeout=60,
            message="writes acknowledged again once PostgreSQL is back",
        )
    assert writers.statuses() <= {201, 503}, writers.statuses()

    writers.retry_refused()
    assert {write.status for write in writers.writes} <= {201, 409}
    acknowledged = writers.customer_ids()
    assert len(acknowledged) == len(writers.writes)
    stored = customer_ids(databases)
    assert sorted(stored) == sorted(set(acknowledged.values()))

    def report_total():
        response = client.get("/api/v1/reports/customers")
        return response.status_code == 200 and response.json()["total"] == len(stored)

    wait_for(report_total, timeout=60, message=f"{len(stored)} customers in the report")
    for name in list(processes.running):
        processes.alive(name)
