"""The reports service killed with SIGKILL in the middle of a backlog, and started again:
its views end up equal to a clean rebuild from the producers' logs."""

import pytest
from sqlalchemy import func, select

from crm_common.config import db_url_key
from services.reports.models import AppliedEvent
from tests.support.fakes import database_for
from tests.support.http import Client
from tests.support.report_views import activity, ok, rebuilt, settled
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.fault, pytest.mark.parametrize("db_kind", ["postgres"])]

ACTIVE_CUSTOMERS = 2
IMPORTED_CUSTOMERS = 100
SMALL_BATCHES = 10


def imported(client, count):
    """`count` customers from one CSV upload: as many events from one request."""
    rows = "".join(f"Imported {n},imported-{n}@example.com\n" for n in range(count))
    response = client.request(
        "POST",
        "/api/v1/customers/import",
        data=f"name,email\n{rows}",
        headers={"Content-Type": "text/csv"},
    )
    assert ok(response)["created"] == count


def test_reports_killed_mid_backlog_and_restarted_build_the_views_a_rebuild_builds(
    crm_config, processes, db_kind
):
    """Simulates the reports process dying (OOM kill, power cut) while it drains a backlog:
    SIGKILL, so no handler finishes and no shutdown runs; messages it had taken but not
    acknowledged go back to their queues, a transaction it had open is rolled back. The
    backlog is real: reports are down while clients work through the gateway, so the
    events wait in reports' durable queues, as after any outage of the service."""
    base_url = processes.start_system(CRM_RATE_LIMIT_PER_MINUTE=0)
    client = Client(base_url)
    processes.kill("reports")  # its queues exist now, and fill while it is away

    for number in range(ACTIVE_CUSTOMERS):
        activity(client, number)
    imported(client, IMPORTED_CUSTOMERS)

    reports_db = database_for(crm_config[db_url_key("reports")])

    def applied():
        with reports_db.session() as session:
            return session.scalar(select(func.count()).select_from(AppliedEvent))

    before = applied()
    # Small group commits (a batch takes at most one event per worker), so that the kill
    # after the first commits lands well before the end of the backlog.
    processes.start("reports", CRM_REPORTS_MAX_WORKERS=SMALL_BATCHES)
    # Killed as soon as it has applied part of the backlog: well before the end of it.
    wait_for(lambda: applied() > before, timeout=60, interval=0.02, message="the drain to start")
    processes.kill("reports")
    at_kill = applied()
    assert at_kill < before + IMPORTED_CUSTOMERS, "the backlog was drained before the kill"

    processes.start("reports")
    live = settled(client, ACTIVE_CUSTOMERS, IMPORTED_CUSTOMERS, timeout=90)
    status = rebuilt(client)
    assert status["events_applied"] > IMPORTED_CUSTOMERS
    assert settled(client, ACTIVE_CUSTOMERS, IMPORTED_CUSTOMERS) == live
    reports_db.engine.dispose()
