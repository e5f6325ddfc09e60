"""Every report as a client reads it, the activity that fills them, and waiting until
they have settled: for tests that compare the views before and after something (a
rebuild, a crash)."""

import time

from tests.support import report_snapshot
from tests.support.http import created
from tests.support.waiting import wait_for

# Longer than CRM_REPORTS_SEGMENT_SECONDS in tests, so a recompute due has happened.
SEGMENTS_SETTLE_SECONDS = 1.5


def ok(response):
    assert response.status_code == 200, response.text
    return response.json()


def snapshot(client):
    """Every report, and the freshness of each; None while one cannot answer yet."""
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


def settled(client, customers, extra_customers=0, timeout=40):
    """The views once every event of `customers` customers' activity (and of
    `extra_customers` customers without any) is in them, and the segments computed from
    them (they follow within a second or two)."""
    everyone = customers + extra_customers

    def complete(answers):
        counted = (
            answers["customers"]["total"],
            answers["service"]["resolved"],
            answers["satisfaction?group_by=agent"]["responses"],
            sum(row["won"] + row["lost"] for row in answers["sales"]["performance"]),
            sum(row["deals"] for row in answers["sales"]["forecast"]),
            sum(row["customers"] for row in answers["segments"]["items"]),
        )
        return counted == (everyone, customers, customers, 2 * customers, customers, everyone)

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

    return wait_for(still, timeout=timeout, message=f"{everyone} customers' activity in the views")


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
