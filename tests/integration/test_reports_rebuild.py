"""Rebuilding the report views from the producers' logs ends with the live views' numbers,
also while live events keep arriving."""

import pytest

from crm_common.cli import rebuild_reports
from tests.support.http import assert_error
from tests.support.report_views import activity, ok, rebuilt, settled
from tests.support.waiting import wait_for


@pytest.mark.parametrize("db_kind", ["postgres"])
def test_a_rebuild_gives_the_live_numbers_even_with_events_arriving_meanwhile(client, db_kind):
    assert_error(client.get("/api/v1/admin/reports/rebuild"), 404, "NOT_FOUND")
    for number in range(3):
        activity(client, number)
    live = settled(client, 3)

    status = rebuilt(client)
    assert status["events_applied"] > 0 and status["events_read"] >= status["events_applied"]
    assert settled(client, 3) == live

    # Writes go on while a rebuild runs: they are in the views at the end, as live.
    response = client.post("/api/v1/admin/reports/rebuild", {})
    assert response.status_code == 202
    for number in range(3, 6):
        activity(client, number)
    wait_for(
        lambda: ok(client.get("/api/v1/admin/reports/rebuild"))["status"] == "done",
        timeout=60,
        message="the second rebuild",
    )
    during = settled(client, 6)
    # A quiet rebuild of the same logs agrees with it.
    rebuilt(client)
    assert settled(client, 6) == during


def test_only_an_admin_rebuilds_and_a_second_request_joins_the_first(client, crm_config):
    manager = client.as_role("manager")
    assert_error(manager.post("/api/v1/admin/reports/rebuild", {}), 403, "FORBIDDEN")
    assert_error(manager.get("/api/v1/admin/reports/rebuild"), 403, "FORBIDDEN")
    assert_error(
        client.post("/api/v1/admin/reports/rebuild", {"now": True}), 400, "VALIDATION_ERROR"
    )
    assert_error(
        client.post("/api/v1/admin/reports/rebuild", None, auth=False), 401, "UNAUTHORIZED"
    )

    first = client.post("/api/v1/admin/reports/rebuild", {}).json()
    second = client.post("/api/v1/admin/reports/rebuild", {}).json()
    if second["status"] != "done":
        assert second["rebuild_id"] == first["rebuild_id"]
    # The command line asks the same service, and follows the rebuild to its end.
    assert rebuild_reports(crm_config, poll_seconds=0.2) == 0
    assert ok(client.get("/api/v1/admin/reports/rebuild"))["status"] == "done"
