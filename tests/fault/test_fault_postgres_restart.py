"""PostgreSQL restarted while client apps keep writing: clear 503s while it is away, and
the system works again when it is back, with no process restarted and nothing lost."""

import pytest

from crm_common.config import SERVICES, db_url_key
from tests.support.http import Client, assert_error
from tests.support.records import customer_ids
from tests.support.writers import assert_nothing_lost, write_through_outage

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

    def while_down():
        assert_error(client.get("/api/v1/customers"), 503, "SERVICE_UNAVAILABLE")
        assert_error(client.get("/api/v1/reports/customers"), 503, "SERVICE_UNAVAILABLE")

    writers = write_through_outage(
        base_url, private_postgres.stop, private_postgres.start, while_down
    )
    assert_nothing_lost(writers, lambda: customer_ids(databases), client)
    # Nothing had to be restarted: every process lived through the outage.
    for name in list(processes.running):
        processes.alive(name)
