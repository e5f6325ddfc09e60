"""Rebuilding the report views from the producers' logs ends with the live views' numbers,
also while live events keep arriving."""

import time

import pytest

from crm_common.cli import rebuild_reports
from tests.support import report_snapshot
from tests.support.http import assert_error, created
from tests.support.waiting import wait_for

# Longer than CRM_REPORTS_SEGMENT_SECONDS in tests, so a recompute due has happened.
SEGMENTS_SETTLE_SECONDS = 1.5


def ok(response):
    assert response.status_code == 200, response.text
    return response.json()


def snapshot(client):
    return report_snapshot.snapshot(client.get)


def activity(client, number):
    """One customer with a won deal, a lost deal, an open one, a call and a rated ticket."""
    customer = created(client.post("/api/v1/customers", {"name": f"Customer {number}"}))["id"]
    deals = [
        created(
            client.post(
                "/api/v1/deals",
                {
                    "customer_id": customer,
                    "title": f"Deal {number}-{n}",
                    "amount": f"{1000 * (n + 1)}.50",
                    "currency": "EUR",
                },
            )
        )["id"]
        for n in range(3)
    ]
    ok(client.post(f"/api/v1/deals/{deals[0]}/stage", {"stage": "proposal"}))
    ok(client.post(f"/api/v1/deals/{deals[0]}/won", {}))
    ok(client.post(f"/api/v1/deals/{deals[1]}/lost", {"reason": "price"}))
    ok(client.post(f"/api/v1/deals/{deals[2]}/stage", {"stage": "qualified"}))
    created(
        client.post(
            "/api/v1/interactions",
            {"customer_id": customer, "channel": "call", "direction": "inbound"},
        )
    )
    ticket = created(client.post("/api/v1/tickets", {"customer_id": customer, "subject": "?"}))
    for step, body in (("assign", {"assignee": "kim"}), ("respond", {}), ("resolve", {})):
        ok(client.post(f"/api/v1/tickets/{ticket['id']}/{step}", body))
    created(client.post(f"/api/v1/tickets/{ticket['id']}/satisfaction", {"score": 4}))


def settled(client, customers):
    """The views once every event of `customers` customers' activity is in them, and the
    segments computed from them (they follow within a second or two)."""

    def complete(answers):
        counted = (
            answers["customers"]["total"],
            answers["service"]["resolved"],
            answers["satisfaction?group_by=agent"]["responses"],
            sum(row["won"] + row["lost"] for row in answers["sales"]["performance"]),
            sum(row["deals"] for row in answers["sales"]["forecast"]),
            sum(row["customers"] for row in answers["segments"]["items"]),
        )
        return counted == (customers, customers, customers, 2 * customers, customers, customers)

    def still():
        before = snapshot(client)
        time.sleep(SEGMENTS_SETTLE_SECONDS)
        after = snapshot(client)
        if before is None or after is None or after[0] != before[0] or not complete(after[0]):
            return None
        answers, freshness = after
        # Segments computed after the newest event of their inputs (won deals, interactions).
        inputs = max(freshness["sales"], freshness["customers"])
        return answers if freshness["segments"] > inputs else None

    return wait_for(still, timeout=40, message=f"{customers} customers' activity in the views")


def rebuilt(client):
    response = client.post("/api/v1/admin/reports/rebuild", {})
    assert response.status_code == 202, response.text
    assert response.headers["Location"] == "/api/v1/admin/reports/rebuild"
    rebuild = response.json()
    assert rebuild["status"] in ("requested", "running")

    def done():
        status = ok(client.get("/api/v1/admin/reports/rebuild"))
        return status if status["status"] == "done" else None

    return wait_for(done, timeout=60, message="the rebuild to finish")


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
