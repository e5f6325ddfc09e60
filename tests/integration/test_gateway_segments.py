"""Segments through the gateway: won deals and interactions move customers between tiers,
and the customers service files them under their segment."""

from tests.support.http import assert_error, created
from tests.support.waiting import wait_for


def test_customers_move_between_segments_and_the_customers_service_follows(client):
    buyer = created(client.post("/api/v1/customers", {"name": "Ada Lovelace"}))["id"]
    talker = created(client.post("/api/v1/customers", {"name": "Charles Babbage"}))["id"]
    deal = created(
        client.post(
            "/api/v1/deals",
            {"customer_id": buyer, "title": "Engine", "amount": "25000.00", "currency": "GBP"},
        )
    )
    assert client.post(f"/api/v1/deals/{deal['id']}/won", {}).status_code == 200
    created(
        client.post(
            "/api/v1/interactions",
            {"customer_id": talker, "channel": "call", "direction": "inbound"},
        )
    )

    def settled():
        report = client.get("/api/v1/reports/segments").json()
        counts = {row["segment"]: row["customers"] for row in report["items"]}
        return report if counts.get("high_value") == 1 and counts.get("potential") == 1 else None

    report = wait_for(settled, message="the segments to follow the deal")
    rows = {row["segment"]: row for row in report["items"]}
    assert rows["high_value"]["avg_monetary"] == "25000.00"
    assert rows["high_value"]["share"] == 0.5
    assert report["as_of"]

    members = client.get("/api/v1/reports/segments/high_value/customers").json()
    assert [(m["customer_id"], m["frequency"], m["monetary"]) for m in members["items"]] == [
        (buyer, 1, "25000.00")
    ]
    wait_for(
        lambda: client.get(f"/api/v1/customers/{buyer}").json()["segment"] == "high_value",
        message="the customers service to file the customer under its segment",
    )
    listed = client.get("/api/v1/customers", params={"segment": "high_value"}).json()["items"]
    assert [customer["id"] for customer in listed] == [buyer]

    # Before anything happened, nobody was anywhere.
    then = client.get("/api/v1/reports/segments", params={"as_of": "2020-01-01T00:00:00Z"}).json()
    assert sum(row["customers"] for row in then["items"]) == 0
    assert then["time_travel"] is True
    assert client.get("/api/v1/reports/segments.csv").text.startswith("segment,customers,share")
    assert_error(client.get("/api/v1/reports/segments/gold/customers"), 400, "VALIDATION_ERROR")
    assert_error(
        client.get("/api/v1/reports/segments", params={"as_of": "soon"}), 400, "VALIDATION_ERROR"
    )
