"""/api/v1/pipelines and /api/v1/deals through the gateway, as a client app uses them."""

import eventlet
import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from tests.support.http import Client, assert_error, created
from tests.support.waiting import wait_for

UNKNOWN_ID = "5bd0c5c5-6f5c-4ef4-9d61-3a4a3d3a0a0a"


@pytest.fixture
def customer_id(client):
    response = client.post("/api/v1/customers", {"name": "Ada Lovelace"})
    assert response.status_code == 201, response.text
    return response.json()["id"]


@pytest.fixture
def sam(client):
    return client.as_role("sales", "sam")


def create_deal(client, customer_id, **fields):
    body = {
        "customer_id": customer_id,
        "title": "Analytical engine",
        "amount": "1500.00",
        "currency": "GBP",
        **fields,
    }
    response = client.post("/api/v1/deals", body)
    assert response.status_code == 201, response.text
    assert response.headers["Location"] == f"/api/v1/deals/{response.json()['id']}"
    return response.json()


def test_pipelines_list_show_create_and_change(client):
    [default] = client.get("/api/v1/pipelines").json()["items"]
    assert [stage["name"] for stage in default["stages"]] == [
        "lead",
        "qualified",
        "proposal",
        "negotiation",
        "won",
        "lost",
    ]
    assert client.get(f"/api/v1/pipelines/{default['id']}").json() == default
    created = client.post(
        "/api/v1/pipelines",
        {"name": "Partners", "stages": [{"name": "intro", "probability": 0.2}]},
    )
    assert created.status_code == 201, created.text
    pipeline = created.json()
    [intro] = pipeline["stages"][:1]
    changed = client.patch(
        f"/api/v1/pipelines/{pipeline['id']}",
        {
            "stages": [
                {"id": intro["id"], "name": "introduced", "probability": "0.25"},
                {"name": "signed", "probability": 0.9},
            ]
        },
    )
    assert changed.status_code == 200, changed.text
    assert [s["name"] for s in changed.json()["stages"]] == ["introduced", "signed", "won", "lost"]

    assert_error(
        client.post(
            "/api/v1/pipelines", {"name": "Partners", "stages": [{"name": "a", "probability": 0.1}]}
        ),
        409,
        "CONFLICT",
    )
    assert_error(
        client.post("/api/v1/pipelines", {"name": "X", "stages": []}), 400, "VALIDATION_ERROR"
    )
    bad = client.post(
        "/api/v1/pipelines", {"name": "X", "stages": [{"name": "lost", "probability": 0}]}
    )
    assert_error(bad, 400, "VALIDATION_ERROR")
    assert_error(client.get("/api/v1/pipelines/nope"), 404, "NOT_FOUND")
    assert_error(
        client.patch("/api/v1/pipelines/5bd0c5c5-6f5c-4ef4-9d61-3a4a3d3a0a0a", {"name": "Y"}),
        404,
        "NOT_FOUND",
    )


def test_renaming_a_pipeline_to_a_taken_name_is_409_naming_it(client):
    stages = [{"name": "due", "probability": 0.5}]
    created(client.post("/api/v1/pipelines", {"name": "Partners", "stages": stages}))
    renewals = created(client.post("/api/v1/pipelines", {"name": "Renewals", "stages": stages}))
    path = f"/api/v1/pipelines/{renewals['id']}"
    quoted = [{"name": "quoted", "probability": 0.7}]
    for body in ({"name": "Partners"}, {"name": "Partners", "stages": quoted}):
        error = assert_error(client.patch(path, body), 409, "CONFLICT")
        assert "'Partners'" in error["message"]
    assert client.get(path).json() == renewals

    renamed = client.patch(path, {"name": "Renewals 2027", "stages": quoted})
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["name"], renamed.json()["version"]) == (
        "Renewals 2027",
        renewals["version"] + 1,
    )


def test_a_deal_goes_through_the_funnel_and_every_invalid_step_is_422(client, customer_id):
    deal = create_deal(client, customer_id, expected_close_date="2027-02-28")
    assert (deal["stage"], deal["status"], deal["amount"], deal["owner"]) == (
        "lead",
        "open",
        "1500.00",
        "admin",
    )
    url = f"/api/v1/deals/{deal['id']}"
    assert client.get(url).json()["title"] == "Analytical engine"
    moved = client.post(f"{url}/stage", {"stage": "proposal"})
    assert (moved.status_code, moved.json()["stage"]) == (200, "proposal")
    assert_error(client.post(f"{url}/stage", {"stage": "proposal"}), 422, "INVALID_TRANSITION")
    assert_error(client.post(f"{url}/stage", {"stage": "won"}), 422, "INVALID_TRANSITION")
    assert_error(client.post(f"{url}/stage", {"stage": "nowhere"}), 400, "VALIDATION_ERROR")
    assert_error(client.post(f"{url}/lost", {}), 400, "VALIDATION_ERROR")
    won = client.request("POST", f"{url}/won")
    assert (won.status_code, won.json().get("status")) == (200, "won"), won.text
    assert_error(client.post(f"{url}/stage", {"stage": "lead"}), 422, "INVALID_TRANSITION")
    assert_error(client.post(f"{url}/won", {}), 422, "INVALID_TRANSITION")
    assert_error(client.post(f"{url}/lost", {"reason": "late"}), 422, "INVALID_TRANSITION")
    reopened = client.post(f"{url}/reopen", {"stage": "negotiation"})
    assert (reopened.status_code, reopened.json()["stage"]) == (200, "negotiation")
    assert_error(client.post(f"{url}/reopen", {}), 422, "INVALID_TRANSITION")
    lost = client.post(f"{url}/lost", {"reason": "Budget frozen"})
    assert (lost.json()["status"], lost.json()["lost_reason"]) == ("lost", "Budget frozen")

    history = client.get(f"{url}/history").json()["items"]
    assert [h["kind"] for h in history] == ["created", "moved", "won", "reopened", "lost"]

    patched = client.patch(url, {"amount": 1750.25, "title": "Difference engine"})
    assert (patched.status_code, patched.json()["amount"]) == (200, "1750.25")


def logged_events(crm_config, aggregate_id):
    with ClusterRpcProxy(crm_config) as rpc:
        found = rpc.pipeline.events_since(None, 1000)["events"]
    return [event["event_type"] for event in found if event["aggregate_id"] == aggregate_id]


def test_a_patch_that_changes_nothing_is_no_new_version_and_no_event(
    client, crm_config, customer_id
):
    stages = [{"name": "intro", "probability": 0.2}]
    pipeline = created(client.post("/api/v1/pipelines", {"name": "Partners", "stages": stages}))
    [intro] = pipeline["stages"][:1]
    path = f"/api/v1/pipelines/{pipeline['id']}"
    same_stages = [{"id": intro["id"], "name": "Intro", "probability": "0.20"}]
    for body in ({}, {"name": "Partners"}, {"name": "Partners", "stages": same_stages}):
        response = client.patch(path, body)
        assert (response.status_code, response.json()) == (200, pipeline), body

    deal = create_deal(client, customer_id, expected_close_date="2027-02-28")
    url = f"/api/v1/deals/{deal['id']}"
    same = {"title": "Analytical engine", "amount": 1500, "currency": "gbp", "owner": "admin"}
    for body in ({}, same, {"expected_close_date": "2027-02-28", "customer_id": customer_id}):
        response = client.patch(url, body)
        assert (response.status_code, response.json()) == (200, deal), body

    assert logged_events(crm_config, pipeline["id"]) == ["pipeline_created"]
    assert logged_events(crm_config, deal["id"]) == ["deal_created"]


@pytest.mark.parametrize("db_kind", ["postgres"])
def test_changes_of_one_pipeline_at_once_take_turns_never_a_500(client, db_kind):
    stages = [{"name": "intro", "probability": 0.2}]
    pipeline = created(client.post("/api/v1/pipelines", {"name": "Partners", "stages": stages}))
    [intro] = pipeline["stages"][:1]
    path = f"/api/v1/pipelines/{pipeline['id']}"

    def change(percent):
        plan = [{"id": intro["id"], "name": "intro", "probability": f"0.{percent}"}]
        # A connection of its own: one pooled keep-alive connection shared by green
        # threads may be one the gateway has just closed.
        return Client(client.base_url, client.token).patch(path, {"stages": plan})

    answers = list(eventlet.GreenPool().imap(change, range(30, 36)))
    assert {answer.status_code for answer in answers} <= {200, 409}, [a.text for a in answers]
    versions = sorted(answer.json()["version"] for answer in answers if answer.ok)
    assert versions == list(range(2, 2 + len(versions)))
    assert client.get(path).json()["version"] == 1 + len(versions)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"title": "x", "amount": "1", "currency": "EUR"},
        {"customer_id": "nope", "title": "x", "amount": "1", "currency": "EUR"},
        {"customer_id": "CID", "title": "", "amount": "1", "currency": "EUR"},
        {"customer_id": "CID", "title": "x", "amount": "-5", "currency": "EUR"},
        {"customer_id": "CID", "title": "x", "amount": "1.234", "currency": "EUR"},
        {"customer_id": "CID", "title": "x", "amount": True, "currency": "EUR"},
        {"customer_id": "CID", "title": "x", "amount": "1", "currency": "EURO"},
        {"customer_id": "CID", "title": "x", "amount": "1", "currency": "12$"},
        {"customer_id": "CID", "title": "x", "amount": "1", "currency": "EUR", "colour": "red"},
        {
            "customer_id": "CID",
            "title": "x",
            "amount": "1",
            "currency": "EUR",
            "expected_close_date": "soon",
        },
        {
            "customer_id": "5bd0c5c5-6f5c-4ef4-9d61-3a4a3d3a0a0a",
            "title": "x",
            "amount": "1",
            "currency": "EUR",
        },
    ],
)
def test_bad_deals_are_400_with_the_field(client, customer_id, body):
    body = {key: customer_id if value == "CID" else value for key, value in body.items()}
    error = assert_error(client.post("/api/v1/deals", body), 400, "VALIDATION_ERROR")
    assert error["fields"]


def test_lists_filter_and_page(client, customer_id):
    for n in range(3):
        create_deal(client, customer_id, title=f"Deal {n}")
    first = client.get("/api/v1/deals", params={"customer_id": customer_id, "limit": 2}).json()
    second = client.get(
        "/api/v1/deals",
        params={"customer_id": customer_id, "limit": 2, "cursor": first["next_cursor"]},
    ).json()
    assert [d["title"] for d in first["items"] + second["items"]] == ["Deal 2", "Deal 1", "Deal 0"]
    assert (
        len(client.get("/api/v1/deals", params={"stage": "lead", "status": "open"}).json()["items"])
        == 3
    )
    for params in (
        {"status": "maybe"},
        {"limit": 501},
        {"customer_id": "x"},
        {"cursor": "forged"},
        {"size": 1},
    ):
        assert_error(client.get("/api/v1/deals", params=params), 400, "VALIDATION_ERROR")
    assert_error(client.get("/api/v1/deals/5bd0c5c5-6f5c-4ef4-9d61-3a4a3d3a0a0a"), 404, "NOT_FOUND")


def test_a_sales_rep_owns_what_it_creates_and_changes_only_that(client, customer_id, sam):
    kim = client.as_role("sales", "kim")
    mine = sam.post(
        "/api/v1/deals",
        {"customer_id": customer_id, "title": "Sam's", "amount": "10", "currency": "EUR"},
    )
    assert (mine.status_code, mine.json()["owner"]) == (201, "sam")
    url = f"/api/v1/deals/{mine.json()['id']}"
    assert_error(kim.post(f"{url}/stage", {"stage": "qualified"}), 403, "FORBIDDEN")
    assert_error(kim.patch(url, {"title": "Kim's now"}), 403, "FORBIDDEN")
    assert_error(kim.post(f"{url}/won", {}), 403, "FORBIDDEN")
    assert_error(sam.patch(url, {"owner": "kim"}), 403, "FORBIDDEN")
    someone_elses = {
        "customer_id": customer_id,
        "title": "x",
        "amount": "1",
        "currency": "EUR",
        "owner": "kim",
    }
    assert_error(sam.post("/api/v1/deals", someone_elses), 403, "FORBIDDEN")
    assert kim.get(url).status_code == 200  # reading is not changing
    assert sam.post(f"{url}/stage", {"stage": "qualified"}).status_code == 200

    manager = client.as_role("manager", "maria")
    assert manager.patch(url, {"owner": "kim"}).json()["owner"] == "kim"
    assert kim.post(f"{url}/won", {}).status_code == 200

    viewer = client.as_role("viewer", "val")
    assert viewer.get(url).status_code == 200
    assert_error(viewer.post(f"{url}/reopen", {}), 403, "FORBIDDEN")
    assert_error(
        sam.post(
            "/api/v1/pipelines", {"name": "Mine", "stages": [{"name": "a", "probability": 0.1}]}
        ),
        403,
        "FORBIDDEN",
    )


def test_the_sales_report_follows_the_deals(client, customer_id, sam):
    def deal(title, amount, close):
        response = sam.post(
            "/api/v1/deals",
            {
                "customer_id": customer_id,
                "title": title,
                "amount": amount,
                "currency": "EUR",
                "expected_close_date": close,
            },
        )
        assert response.status_code == 201, response.text
        return f"/api/v1/deals/{response.json()['id']}"

    won = deal("Won", "1000.00", "2027-05-20")
    lost = deal("Lost", "50.00", "2027-05-20")
    open_one = deal("Open", "400.00", "2027-06-01")
    assert sam.post(f"{won}/won", {}).status_code == 200
    assert sam.post(f"{lost}/lost", {"reason": "No budget"}).status_code == 200
    assert sam.post(f"{open_one}/stage", {"stage": "proposal"}).status_code == 200

    def settled():
        report = client.get("/api/v1/reports/sales", params={"owner": "sam"}).json()
        closed = sum(row["won"] + row["lost"] for row in report["performance"])
        weighted = [row["weighted_amount"] for row in report["forecast"]]
        return report if closed == 2 and weighted == ["200.00"] else None

    report = wait_for(settled, message="the sales report to follow the deals")
    [performance] = report["performance"]
    assert (performance["won"], performance["lost"], performance["won_amount"]) == (
        1,
        1,
        {"EUR": "1000.00"},
    )
    assert performance["win_rate"] == 0.5
    [forecast] = report["forecast"]
    assert (forecast["month"], forecast["amount"], forecast["weighted_amount"]) == (
        "2027-06",
        "400.00",
        "200.00",
    )
    assert report["as_of"] and report["lag_seconds"] >= 0
    exported = client.get("/api/v1/reports/sales.csv", params={"owner": "sam"})
    assert exported.headers["Content-Type"].startswith("text/csv")
    lines = exported.text.splitlines()
    assert lines[0].startswith("section,owner,month,won,lost,won_amount")
    assert len(lines) == 3

    # A stage's new probability weighs its open deals again.
    pipeline = client.get("/api/v1/pipelines").json()["items"][0]
    stages = [
        {
            "id": stage["id"],
            "name": stage["name"],
            "probability": "0.8" if stage["name"] == "proposal" else stage["probability"],
        }
        for stage in pipeline["stages"]
        if stage["kind"] == "open"
    ]
    assert (
        client.patch(f"/api/v1/pipelines/{pipeline['id']}", {"stages": stages}).status_code == 200
    )
    wait_for(
        lambda: (
            [
                row["weighted_amount"]
                for row in client.get("/api/v1/reports/sales", params={"owner": "sam"}).json()[
                    "forecast"
                ]
            ]
            == ["320.00"]
        ),
        message="the forecast to weigh the deal by its stage's new probability",
    )
    assert_error(client.get("/api/v1/reports/nothing.csv"), 404, "NOT_FOUND")
    assert_error(
        client.get("/api/v1/reports/sales.csv", params={"to": "2027"}), 400, "VALIDATION_ERROR"
    )
    assert_error(
        client.get("/api/v1/reports/sales", params={"from": "2027-13"}), 400, "VALIDATION_ERROR"
    )
    assert_error(client.get("/api/v1/reports/sales", params={"by": "x"}), 400, "VALIDATION_ERROR")


def test_the_funnel_follows_the_deals_and_travels_in_time(client, customer_id):
    before = client.get("/api/v1/reports/funnel")
    assert before.status_code in (200, 404), before.text
    first = create_deal(client, customer_id, title="One")
    second = create_deal(client, customer_id, title="Two")
    assert client.post(f"/api/v1/deals/{first['id']}/stage", {"stage": "qualified"}).ok
    assert client.post(f"/api/v1/deals/{first['id']}/won", {}).ok
    assert client.post(f"/api/v1/deals/{second['id']}/lost", {"reason": "Budget"}).ok

    def settled():
        response = client.get("/api/v1/reports/funnel")
        report = response.json() if response.status_code == 200 else None
        return report if report and report["won"] == 1 and report["lost"] == 1 else None

    report = wait_for(settled, message="the funnel to follow the deals")
    stages = {row["stage"]: row for row in report["stages"]}
    assert [row["stage"] for row in report["stages"]] == [
        "lead",
        "qualified",
        "proposal",
        "negotiation",
        "won",
    ]
    assert (stages["lead"]["entered"], stages["lead"]["converted"]) == (2, 1)
    assert (stages["lead"]["conversion_rate"], stages["lead"]["drop_rate"]) == (0.5, 0.5)
    assert stages["qualified"]["conversion_rate"] == 1.0
    assert report["win_rate"] == 0.5
    assert report["bottleneck"] == "lead"
    assert report["as_of"] and report["lag_seconds"] >= 0

    then = client.get("/api/v1/reports/funnel", params={"as_of": first["created_at"]}).json()
    assert then["time_travel"] is True
    assert sum(row["entered"] for row in then["stages"]) <= 2
    assert then["won"] == 0
    assert_error(
        client.get("/api/v1/reports/funnel", params={"as_of": "yesterday"}), 400, "VALIDATION_ERROR"
    )
    assert_error(
        client.get("/api/v1/reports/funnel", params={"pipeline_id": UNKNOWN_ID}), 404, "NOT_FOUND"
    )
    exported = client.get("/api/v1/reports/funnel.csv")
    assert exported.text.splitlines()[0].startswith("stage,stage_id,entered")
