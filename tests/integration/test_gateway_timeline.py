"""GET /api/v1/customers/{id}/timeline: one customer's records of every service, newest first."""

from datetime import datetime

from tests.support.http import assert_error, created
from tests.support.waiting import wait_for


def test_the_timeline_merges_every_service_newest_first_in_pages(client):
    ada = created(client.post("/api/v1/customers", {"name": "Ada Lovelace"}))["id"]
    other = created(client.post("/api/v1/customers", {"name": "Charles Babbage"}))["id"]
    deal = created(
        client.post(
            "/api/v1/deals",
            {"customer_id": ada, "title": "Engine", "amount": "10.00", "currency": "GBP"},
        )
    )
    call = created(
        client.post(
            "/api/v1/interactions",
            {
                "customer_id": ada,
                "channel": "call",
                "direction": "outbound",
                "deal_id": deal["id"],
                "subject": "Price",
            },
        )
    )
    assert call["deal_id"] == deal["id"]
    feedback = created(
        client.post(
            "/api/v1/feedback", {"customer_id": ada, "kind": "complaint", "text": "Too slow"}
        )
    )
    ticket_id = feedback["ticket"]["id"]
    for name in ("assign", "respond", "resolve"):
        body = {"assignee": "sue"} if name == "assign" else {}
        assert client.post(f"/api/v1/tickets/{ticket_id}/{name}", body).status_code == 200
    created(client.post(f"/api/v1/tickets/{ticket_id}/satisfaction", {"score": 4}))
    created(
        client.post(
            "/api/v1/deals",
            {"customer_id": other, "title": "Not Ada's", "amount": "1", "currency": "GBP"},
        )
    )

    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        response = client.get(f"/api/v1/customers/{ada}/timeline", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 2
        seen += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(item["kind"] for item in seen) == [
        "deal",
        "feedback",
        "interaction",
        "satisfaction",
        "ticket",
    ]
    assert {item["customer_id"] for item in seen} == {ada}
    times = [datetime.fromisoformat(item["at"]) for item in seen]
    assert times == sorted(times, reverse=True)
    assert len({(item["kind"], item["id"]) for item in seen}) == len(seen)
    [deal_item] = [item for item in seen if item["kind"] == "deal"]
    assert (deal_item["title"], deal_item["stage"], deal_item["amount"]) == (
        "Engine",
        "lead",
        "10.00",
    )

    assert_error(
        client.get(f"/api/v1/customers/{ada}/timeline", params={"cursor": "forged"}),
        400,
        "VALIDATION_ERROR",
    )
    assert_error(
        client.get("/api/v1/customers/5bd0c5c5-6f5c-4ef4-9d61-3a4a3d3a0a0a/timeline"),
        404,
        "NOT_FOUND",
    )
    # An interaction's deal must be the customer's own.
    assert_error(
        client.post(
            "/api/v1/interactions",
            {"customer_id": other, "channel": "note", "deal_id": deal["id"]},
        ),
        400,
        "VALIDATION_ERROR",
    )


def test_a_merged_customers_timeline_is_its_survivors(client):
    ada = created(client.post("/api/v1/customers", {"name": "Ada Lovelace"}))["id"]
    twin = created(client.post("/api/v1/customers?allow_duplicate=true", {"name": "Ada L"}))["id"]
    created(
        client.post(
            "/api/v1/interactions",
            {"customer_id": twin, "channel": "email", "direction": "inbound"},
        )
    )
    created(
        client.post(
            "/api/v1/deals",
            {"customer_id": twin, "title": "Twin's", "amount": "5", "currency": "EUR"},
        )
    )
    assert client.post(f"/api/v1/customers/{ada}/merge", {"merge_ids": [twin]}).status_code == 200

    def both_moved():
        items = client.get(f"/api/v1/customers/{twin}/timeline").json()["items"]
        return items if len(items) == 2 and {i["customer_id"] for i in items} == {ada} else None

    items = wait_for(both_moved, message="the twin's records to follow the merge")
    assert sorted(item["kind"] for item in items) == ["deal", "interaction"]
