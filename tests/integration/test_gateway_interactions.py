"""/api/v1/interactions, /feedback and /tickets over HTTP: every endpoint and every refused step."""

import pytest

from tests.support.http import assert_error, created

UNKNOWN = "00000000-0000-4000-8000-000000000000"


def ok(response):
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def customer(client):
    return created(client.post("/api/v1/customers", {"name": "Ada Lovelace"}))["id"]


def open_ticket(client, customer, **fields):
    return created(
        client.post("/api/v1/tickets", {"customer_id": customer, "subject": "Broken", **fields})
    )


def step(client, ticket_id, name, body=None):
    if body is None:  # the optional body may be left out
        return client.request("POST", f"/api/v1/tickets/{ticket_id}/{name}")
    return client.post(f"/api/v1/tickets/{ticket_id}/{name}", body)


def test_interactions_are_logged_listed_and_read(client, customer):
    response = client.post(
        "/api/v1/interactions",
        {
            "customer_id": customer,
            "channel": "call",
            "direction": "inbound",
            "subject": "Pricing",
            "outcome": "asked for a quote",
            "occurred_at": "2026-01-31T12:00:00+01:00",
        },
    )
    call = created(response)
    assert response.headers["Location"] == f"/api/v1/interactions/{call['id']}"
    assert (call["owner"], call["logged_by"]) == ("admin", "admin")
    assert call["occurred_at"] == "2026-01-31T11:00:00+00:00"
    note = created(
        client.post(
            "/api/v1/interactions", {"customer_id": customer, "channel": "note", "owner": "kim"}
        )
    )
    assert ok(client.get(f"/api/v1/interactions/{call['id'].upper()}"))["subject"] == "Pricing"

    listed = ok(client.get(f"/api/v1/interactions?customer_id={customer}&limit=1"))
    assert [item["id"] for item in listed["items"]] == [note["id"]]
    rest = ok(
        client.get(f"/api/v1/interactions?customer_id={customer}&cursor={listed['next_cursor']}")
    )
    assert ([item["id"] for item in rest["items"]], rest["next_cursor"]) == ([call["id"]], None)
    assert [i["id"] for i in ok(client.get("/api/v1/interactions?owner=kim"))["items"]] == [
        note["id"]
    ]
    assert ok(client.get("/api/v1/interactions?channel=email"))["items"] == []
    assert ok(client.get(f"/api/v1/interactions?deal_id={UNKNOWN}"))["items"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"customer_id": None, "channel": "note"}, "customer_id"),
        ({"customer_id": "nope", "channel": "note"}, "customer_id"),
        ({"customer_id": UNKNOWN, "channel": "note"}, "customer_id"),
        ({"channel": "fax"}, "channel"),
        ({"channel": "email"}, "direction"),
        ({"channel": "note", "occurred_at": "yesterday"}, "occurred_at"),
        ({"channel": "note", "occurred_at": "2999-01-01T00:00:00Z"}, "occurred_at"),
        ({"channel": "note", "occurred_at": "0001-01-01T00:00:00+14:00"}, "occurred_at"),
        ({"channel": "note", "occurred_at": "9999-12-31T23:59:59-14:00"}, "occurred_at"),
        ({"channel": "note", "deal_id": "nope"}, "deal_id"),
        ({"channel": "note", "mood": "happy"}, "mood"),
        ({"channel": "note", "subject": 7}, "subject"),
    ],
)
def test_bad_interactions_are_400_naming_the_field(client, customer, body, field):
    body = {"customer_id": customer, **body}
    error = assert_error(client.post("/api/v1/interactions", body), 400, "VALIDATION_ERROR")
    assert field in error["fields"]


def test_bad_lookups_and_queries(client):
    assert_error(client.get(f"/api/v1/interactions/{UNKNOWN}"), 404, "NOT_FOUND")
    assert_error(client.get("/api/v1/interactions/nope"), 404, "NOT_FOUND")
    assert_error(client.get(f"/api/v1/tickets/{UNKNOWN}"), 404, "NOT_FOUND")
    for query in ("limit=0", "limit=501", "cursor=forged", "channel=fax", "customer_id=nope"):
        assert_error(client.get(f"/api/v1/interactions?{query}"), 400, "VALIDATION_ERROR")
    for query in ("status=lost", "priority=asap", "cursor=forged", "colour=red"):
        assert_error(client.get(f"/api/v1/tickets?{query}"), 400, "VALIDATION_ERROR")
    assert_error(client.get("/api/v1/tickets", auth=False), 401, "UNAUTHORIZED")
    response = client.request(
        "POST", "/api/v1/feedback", data="kind=complaint", headers={"Content-Type": "text/plain"}
    )
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_a_complaint_opens_a_ticket_and_praise_does_not(client, customer):
    complaint = created(
        client.post(
            "/api/v1/feedback",
            {
                "customer_id": customer,
                "kind": "complaint",
                "text": "Invoice wrong",
                "priority": "high",
            },
        )
    )
    ticket = complaint["ticket"]
    assert (ticket["feedback_id"], ticket["priority"], ticket["status"]) == (
        complaint["id"],
        "high",
        "open",
    )
    assert ok(client.get(f"/api/v1/tickets/{complaint['ticket_id']}"))["subject"] == "Invoice wrong"
    praise = created(
        client.post(
            "/api/v1/feedback", {"customer_id": customer, "kind": "praise", "text": "Great"}
        )
    )
    assert praise["ticket"] is None
    for body, field in (
        ({"kind": "rant", "text": "x"}, "kind"),
        ({"kind": "praise"}, "text"),
        ({"kind": "praise", "text": "   "}, "text"),
        ({"kind": "complaint", "text": "x", "priority": "asap"}, "priority"),
    ):
        error = assert_error(
            client.post("/api/v1/feedback", {"customer_id": customer, **body}),
            400,
            "VALIDATION_ERROR",
        )
        assert field in error["fields"]


def test_the_ticket_workflow_end_to_end(client, customer):
    response = client.post(
        "/api/v1/tickets", {"customer_id": customer, "subject": "Login fails", "priority": "urgent"}
    )
    ticket = created(response)
    assert response.headers["Location"] == f"/api/v1/tickets/{ticket['id']}"
    assert (ticket["status"], ticket["sla"]["response_breached"]) == ("open", False)

    assigned = ok(step(client, ticket["id"], "assign", {"assignee": "kim", "note": "yours"}))
    assert (assigned["status"], assigned["assignee"]) == ("assigned", "kim")
    assert ok(step(client, ticket["id"], "respond"))["status"] == "responded"
    resolved = ok(step(client, ticket["id"], "resolve", {"note": "reset password"}))
    assert (resolved["status"], resolved["survey_due"], resolved["resolved_by"]) == (
        "resolved",
        True,
        "admin",
    )
    answer = created(
        client.post(f"/api/v1/tickets/{ticket['id']}/satisfaction", {"score": 5, "comment": "fast"})
    )
    assert (answer["score"], answer["agent"]) == (5, "kim")
    closed = ok(step(client, ticket["id"], "close", {}))
    assert (closed["status"], closed["survey_due"], closed["satisfaction_score"]) == (
        "closed",
        False,
        5,
    )

    full = ok(client.get(f"/api/v1/tickets/{ticket['id']}"))
    assert [(s["step"], s["from_status"], s["to_status"]) for s in full["history"]] == [
        ("open", None, "open"),
        ("assign", "open", "assigned"),
        ("respond", "assigned", "responded"),
        ("resolve", "responded", "resolved"),
        ("close", "resolved", "closed"),
    ]
    assert all(s["actor"] == "admin" and s["at"] for s in full["history"][1:])
    assert full["history"][1]["note"] == "yours"
    assert full["satisfaction"]["comment"] == "fast"

    listed = ok(client.get(f"/api/v1/tickets?status=closed&assignee=kim&customer_id={customer}"))
    assert [item["id"] for item in listed["items"]] == [ticket["id"]]
    assert ok(client.get("/api/v1/tickets?status=open"))["items"] == []


def test_a_resolved_ticket_can_be_reopened_and_worked_again(client, customer):
    ticket = open_ticket(client, customer)
    step(client, ticket["id"], "assign", {"assignee": "kim"})
    step(client, ticket["id"], "respond")
    step(client, ticket["id"], "resolve")
    reopened = ok(step(client, ticket["id"], "reopen", {"note": "still broken"}))
    assert (reopened["status"], reopened["reopened_count"], reopened["survey_due"]) == (
        "assigned",
        1,
        False,
    )
    reassigned = ok(step(client, ticket["id"], "assign", {"assignee": "lee"}))
    assert (reassigned["status"], reassigned["assignee"]) == ("assigned", "lee")
    step(client, ticket["id"], "respond")
    assert ok(step(client, ticket["id"], "resolve"))["status"] == "resolved"


# From each status, the steps it refuses (see the workflow in services/interactions/domain.py).
REFUSED = {
    "open": ("respond", "resolve", "close", "reopen"),
    "assigned": ("resolve", "close", "reopen"),
    "responded": ("close", "reopen"),
    "resolved": ("assign", "respond", "resolve"),
    "closed": ("assign", "respond", "resolve", "close", "reopen"),
}
PATH_TO = {
    "open": (),
    "assigned": ("assign",),
    "responded": ("assign", "respond"),
    "resolved": ("assign", "respond", "resolve"),
    "closed": ("assign", "respond", "resolve", "close"),
}


@pytest.mark.parametrize("status", list(REFUSED))
def test_every_step_out_of_order_is_422_and_changes_nothing(client, customer, status):
    ticket = open_ticket(client, customer)
    for name in PATH_TO[status]:
        ok(step(client, ticket["id"], name, {"assignee": "kim"} if name == "assign" else {}))
    before = ok(client.get(f"/api/v1/tickets/{ticket['id']}"))
    for name in REFUSED[status]:
        body = {"assignee": "lee"} if name == "assign" else {}
        error = assert_error(step(client, ticket["id"], name, body), 422, "INVALID_TRANSITION")
        assert (error["ticket_status"], error["step"]) == (status, name)
    assert ok(client.get(f"/api/v1/tickets/{ticket['id']}")) == before
    if status not in ("resolved", "closed"):
        assert_error(
            client.post(f"/api/v1/tickets/{ticket['id']}/satisfaction", {"score": 3}),
            422,
            "INVALID_TRANSITION",
        )


def test_bad_ticket_requests(client, customer):
    ticket = open_ticket(client, customer)
    for body, field in (
        ({}, "customer_id"),
        ({"customer_id": customer}, "subject"),
        ({"customer_id": customer, "subject": "x", "priority": "asap"}, "priority"),
        ({"customer_id": customer, "subject": "x", "channel": "fax"}, "channel"),
        ({"customer_id": UNKNOWN, "subject": "x"}, "customer_id"),
    ):
        error = assert_error(client.post("/api/v1/tickets", body), 400, "VALIDATION_ERROR")
        assert field in error["fields"]
    for body, field in (({}, "assignee"), ({"assignee": ""}, "assignee"), ({"x": 1}, "x")):
        error = assert_error(step(client, ticket["id"], "assign", body), 400, "VALIDATION_ERROR")
        assert field in error["fields"]
    assert_error(step(client, UNKNOWN, "assign", {"assignee": "kim"}), 404, "NOT_FOUND")
    assert_error(step(client, "nope", "respond"), 404, "NOT_FOUND")
    response = client.request(
        "POST",
        f"/api/v1/tickets/{ticket['id']}/assign",
        data="kim",
        headers={"Content-Type": "text/plain"},
    )
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert_error(
        client.post(f"/api/v1/tickets/{UNKNOWN}/satisfaction", {"score": 3}), 404, "NOT_FOUND"
    )


def test_satisfaction_is_scored_once(client, customer):
    ticket = open_ticket(client, customer)
    for name in ("assign", "respond", "resolve"):
        step(client, ticket["id"], name, {"assignee": "kim"} if name == "assign" else {})
    path = f"/api/v1/tickets/{ticket['id']}/satisfaction"
    for body in (
        {"score": 0},
        {"score": 6},
        {"score": "5"},
        {"score": 4.5},
        {},
        {"score": 3, "x": 1},
    ):
        assert_error(client.post(path, body), 400, "VALIDATION_ERROR")
    created(client.post(path, {"score": 2}))
    error = assert_error(client.post(path, {"score": 5}), 409, "CONFLICT")
    assert error["ticket_id"] == ticket["id"]
