"""The pipeline service over RPC and events, on real RabbitMQ, SQLite and PostgreSQL."""

import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from services.customers.service import CustomersService
from services.pipeline.service import PipelineService
from tests.support.waiting import wait_for

pytestmark = pytest.mark.parametrize("db_kind", ["sqlite", "postgres"])

SAM = {"subject": "sam", "own_only": True}
KIM = {"subject": "kim", "own_only": True}
MANAGER = {"subject": "maria", "own_only": False}


@pytest.fixture
def rpc(crm_config, runner_factory):
    runner_factory(crm_config, CustomersService, PipelineService).start()
    with ClusterRpcProxy(crm_config) as proxy:
        yield proxy


@pytest.fixture
def customer(rpc):
    return rpc.customers.create_customer({"name": "Ada Lovelace", "email": "ada@example.com"})


def events(rpc, aggregate_id=None):
    found = rpc.pipeline.events_since(None, 1000)["events"]
    return [e for e in found if aggregate_id in (None, e["aggregate_id"])]


def failure(call):
    """(exception type name, message) of a call that must fail."""
    try:
        call()
    except Exception as exc:
        return getattr(exc, "exc_type", type(exc).__name__), str(exc)
    raise AssertionError("expected the call to fail")


def new_deal(rpc, customer, actor=SAM, **fields):
    payload = {
        "customer_id": customer["id"],
        "title": "Analytical engine",
        "amount": "12500.50",
        "currency": "eur",
        **fields,
    }
    return rpc.pipeline.create_deal(payload, actor)


def test_the_default_pipeline_exists_from_the_first_start(rpc):
    [pipeline] = rpc.pipeline.list_pipelines()["items"]
    assert pipeline["is_default"] and pipeline["name"] == "Sales"
    assert [(s["name"], s["kind"], s["probability"]) for s in pipeline["stages"]] == [
        ("lead", "open", 0.1),
        ("qualified", "open", 0.25),
        ("proposal", "open", 0.5),
        ("negotiation", "open", 0.75),
        ("won", "won", 1.0),
        ("lost", "lost", 0.0),
    ]
    [created] = events(rpc, pipeline["id"])
    assert created["event_type"] == "pipeline_created"
    assert [s["name"] for s in created["data"]["stages"]][-2:] == ["won", "lost"]


def test_a_deal_needs_a_real_customer_and_keeps_money_exact(rpc, customer):
    deal = new_deal(rpc, customer)
    assert (deal["amount"], deal["currency"], deal["owner"], deal["stage"]) == (
        "12500.50",
        "EUR",
        "sam",
        "lead",
    )
    assert (deal["status"], deal["probability"], deal["version"]) == ("open", 0.1, 1)
    [event] = events(rpc, deal["id"])
    assert event["event_type"] == "deal_created"
    assert event["data"]["deal"]["amount"] == "12500.50"
    assert event["data"]["deal"]["customer_id"] == customer["id"]

    missing = {**customer, "id": "1f0e5a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"}
    assert failure(lambda: new_deal(rpc, missing))[0] == "UnknownCustomer"
    for amount in ("-1", "1.005", "NaN", "abc", True, None):
        kind, message = failure(lambda amount=amount: new_deal(rpc, customer, amount=amount))
        assert kind == "InvalidDeal", amount
    assert failure(lambda: new_deal(rpc, customer, currency="euro"))[0] == "InvalidDeal"
    kind, message = failure(lambda: new_deal(rpc, customer, stage="nowhere"))
    assert kind == "InvalidDeal" and "lead, qualified" in message


def test_stage_changes_are_recorded_with_dwell_and_closed_deals_do_not_move(rpc, customer):
    deal = new_deal(rpc, customer, expected_close_date="2027-03-31")
    moved = rpc.pipeline.move_deal(deal["id"], {"stage": "Proposal"}, SAM)
    assert (moved["stage"], moved["probability"], moved["version"]) == ("proposal", 0.5, 2)
    assert (
        failure(lambda: rpc.pipeline.move_deal(deal["id"], {"stage": "proposal"}, SAM))[0]
        == "InvalidStageTransition"
    )
    assert (
        failure(lambda: rpc.pipeline.move_deal(deal["id"], {"stage": "won"}, SAM))[0]
        == "InvalidStageTransition"
    )

    assert failure(lambda: rpc.pipeline.lose_deal(deal["id"], {}, SAM))[0] == "InvalidDeal"
    assert failure(lambda: rpc.pipeline.lose_deal(deal["id"], {"reason": "  "}, SAM))[0] in (
        "InvalidDeal",
        "InvalidPipeline",
    )
    lost = rpc.pipeline.lose_deal(deal["id"], {"reason": "Chose a competitor"}, SAM)
    assert (lost["status"], lost["stage"], lost["lost_reason"]) == (
        "lost",
        "lost",
        "Chose a competitor",
    )
    for step in (
        lambda: rpc.pipeline.move_deal(deal["id"], {"stage": "negotiation"}, SAM),
        lambda: rpc.pipeline.win_deal(deal["id"], SAM),
        lambda: rpc.pipeline.lose_deal(deal["id"], {"reason": "again"}, SAM),
    ):
        assert failure(step)[0] == "InvalidStageTransition"

    reopened = rpc.pipeline.reopen_deal(deal["id"], None, SAM)
    assert (reopened["status"], reopened["stage"], reopened["lost_reason"]) == (
        "open",
        "proposal",
        None,
    )
    assert failure(lambda: rpc.pipeline.reopen_deal(deal["id"], None, SAM))[0] == (
        "InvalidStageTransition"
    )
    won = rpc.pipeline.win_deal(deal["id"], SAM)
    assert (won["status"], won["stage"], won["probability"]) == ("won", "won", 1.0)
    assert won["closed_at"]

    history = rpc.pipeline.deal_history(deal["id"])["items"]
    assert [(h["kind"], h["from_stage"], h["to_stage"]) for h in history] == [
        ("created", None, "lead"),
        ("moved", "lead", "proposal"),
        ("lost", "proposal", "lost"),
        ("reopened", "lost", "proposal"),
        ("won", "proposal", "won"),
    ]
    assert all(h["by"] == "sam" for h in history)
    assert all(h["dwell_seconds"] >= 0 for h in history[1:])
    assert history[2]["reason"] == "Chose a competitor"

    types = [(e["event_type"], e["sequence"]) for e in events(rpc, deal["id"])]
    assert types == [
        ("deal_created", 1),
        ("deal_stage_changed", 2),
        ("deal_lost", 3),
        ("deal_reopened", 4),
        ("deal_won", 5),
    ]
    changed = events(rpc, deal["id"])[1]["data"]
    assert (changed["from_stage"], changed["to_stage"], changed["probability"]) == (
        "lead",
        "proposal",
        0.5,
    )
    assert changed["dwell_seconds"] >= 0
    assert events(rpc, deal["id"])[2]["data"]["reason"] == "Chose a competitor"


def test_updates_carry_changes_and_sales_reps_touch_only_their_own(rpc, customer):
    deal = new_deal(rpc, customer)
    updated = rpc.pipeline.update_deal(
        deal["id"], {"amount": 13000, "expected_close_date": "2027-01-15"}, SAM
    )
    assert (updated["amount"], updated["expected_close_date"]) == ("13000.00", "2027-01-15")
    [_, event] = events(rpc, deal["id"])
    assert event["event_type"] == "deal_updated"
    assert event["data"]["changes"] == {
        "amount": ["12500.50", "13000.00"],
        "expected_close_date": [None, "2027-01-15"],
    }
    unchanged = rpc.pipeline.update_deal(deal["id"], {"amount": "13000"}, SAM)
    assert unchanged["version"] == updated["version"]

    for step in (
        lambda: rpc.pipeline.update_deal(deal["id"], {"title": "Mine now"}, KIM),
        lambda: rpc.pipeline.move_deal(deal["id"], {"stage": "qualified"}, KIM),
        lambda: rpc.pipeline.win_deal(deal["id"], KIM),
        lambda: rpc.pipeline.update_deal(deal["id"], {"owner": "kim"}, SAM),
        lambda: new_deal(rpc, customer, actor=KIM, owner="sam"),
        # A caller that does not say who it is gets the least privilege.
        lambda: rpc.pipeline.update_deal(deal["id"], {"title": "Anyone's"}),
        lambda: rpc.pipeline.win_deal(deal["id"]),
        lambda: rpc.pipeline.win_deal(deal["id"], {"subject": "kim"}),
    ):
        assert failure(step)[0] == "NotDealOwner"
    handed = rpc.pipeline.update_deal(deal["id"], {"owner": "kim"}, MANAGER)
    assert handed["owner"] == "kim"
    assert rpc.pipeline.move_deal(deal["id"], {"stage": "qualified"}, KIM)["stage"] == "qualified"


def test_lists_filter_and_page_newest_first(rpc, customer):
    other = rpc.customers.create_customer({"name": "Charles Babbage"})
    made = [new_deal(rpc, customer, title=f"Deal {n}") for n in range(5)]
    mine = new_deal(rpc, other, actor=KIM, title="Kim's")
    rpc.pipeline.win_deal(made[0]["id"], SAM)

    first = rpc.pipeline.list_deals({"customer_id": customer["id"], "limit": 3})
    second = rpc.pipeline.list_deals(
        {"customer_id": customer["id"], "limit": 3, "cursor": first["next_cursor"]}
    )
    titles = [d["title"] for d in first["items"] + second["items"]]
    assert titles == ["Deal 4", "Deal 3", "Deal 2", "Deal 1", "Deal 0"]
    assert second["next_cursor"] is None
    assert [d["id"] for d in rpc.pipeline.list_deals({"owner": "kim"})["items"]] == [mine["id"]]
    assert [d["title"] for d in rpc.pipeline.list_deals({"status": "won"})["items"]] == ["Deal 0"]
    assert len(rpc.pipeline.list_deals({"stage": "lead"})["items"]) == 5
    for query in ({"cursor": "forged"}, {"limit": 0}, {"status": "maybe"}, {"colour": "red"}):
        assert failure(lambda query=query: rpc.pipeline.list_deals(query))[0] == "InvalidDeal"
    assert rpc.pipeline.resolve_deal(mine["id"]) == {
        "id": mine["id"],
        "customer_id": other["id"],
        "state": "open",
    }
    assert rpc.pipeline.resolve_deal("nope")["state"] == "missing"


def test_stages_are_added_renamed_reordered_and_archived_keeping_history(rpc, customer):
    pipeline = rpc.pipeline.create_pipeline(
        {
            "name": "Renewals",
            "stages": [
                {"name": "due", "probability": "0.6"},
                {"name": "quoted", "probability": 0.8},
            ],
        }
    )
    due, quoted = pipeline["stages"][:2]
    deal = new_deal(rpc, customer, pipeline_id=pipeline["id"])
    assert deal["stage"] == "due"
    rpc.pipeline.move_deal(deal["id"], {"stage": "quoted"}, SAM)

    changed = rpc.pipeline.update_pipeline(
        pipeline["id"],
        {
            "stages": [
                {"name": "contacted", "probability": 0.3},
                {"id": quoted["id"], "name": "offer sent", "probability": 0.85},
                {"id": due["id"], "name": "due", "probability": 0.6},
            ]
        },
    )
    assert [(s["name"], s["probability"]) for s in changed["stages"]] == [
        ("contacted", 0.3),
        ("offer sent", 0.85),
        ("due", 0.6),
        ("won", 1.0),
        ("lost", 0.0),
    ]
    assert changed["version"] == pipeline["version"] + 1
    moved = rpc.pipeline.get_deal(deal["id"])
    assert (moved["stage"], moved["stage_id"]) == ("offer sent", quoted["id"])
    history = rpc.pipeline.deal_history(deal["id"])["items"]
    assert history[-1]["to_stage"] == "offer sent"  # the renamed stage, same history

    kind, _ = failure(
        lambda: rpc.pipeline.update_pipeline(
            pipeline["id"], {"stages": [{"name": "contacted", "probability": 0.3}]}
        )
    )
    assert kind == "StageInUse"
    rpc.pipeline.update_pipeline(
        pipeline["id"],
        {
            "stages": [
                {"id": quoted["id"], "name": "offer sent", "probability": 0.85},
            ]
        },
    )
    assert [e["event_type"] for e in events(rpc, pipeline["id"])] == [
        "pipeline_created",
        "pipeline_changed",
        "pipeline_changed",
    ]
    bad_plans = [
        {"name": "X", "stages": []},
        {"name": "X", "stages": [{"name": "won", "probability": 1}]},
        {"name": "X", "stages": [{"name": "a", "probability": 1.5}]},
        {
            "name": "X",
            "stages": [{"name": "a", "probability": 0.1}, {"name": "A", "probability": 0.2}],
        },
        {"name": "X", "stages": [{"name": "a", "probability": 0.12345}]},
        {"stages": [{"name": "a", "probability": 0.1}]},
    ]
    for plan in bad_plans:
        assert failure(lambda plan=plan: rpc.pipeline.create_pipeline(plan))[0] == (
            "InvalidPipeline"
        ), plan
    taken = {"name": "Renewals", "stages": [{"name": "a", "probability": 0.1}]}
    assert failure(lambda: rpc.pipeline.create_pipeline(taken))[0] == "PipelineNameTaken"


def test_a_rename_to_a_taken_name_is_refused_and_one_change_is_one_version(rpc):
    stages = [{"name": "due", "probability": 0.5}]
    rpc.pipeline.create_pipeline({"name": "Partners", "stages": stages})
    renewals = rpc.pipeline.create_pipeline({"name": "Renewals", "stages": stages})
    quoted = [{"name": "quoted", "probability": 0.7}]
    for change in ({"name": "Partners"}, {"name": "Partners", "stages": quoted}):
        kind, message = failure(
            lambda change=change: rpc.pipeline.update_pipeline(renewals["id"], change)
        )
        assert (kind, message) == ("PipelineNameTaken", "A pipeline is named 'Partners' already.")
    assert rpc.pipeline.get_pipeline(renewals["id"]) == renewals
    renamed = rpc.pipeline.update_pipeline(
        renewals["id"], {"name": "Renewals 2027", "stages": quoted}
    )
    assert renamed["version"] == renewals["version"] + 1
    assert [(e["event_type"], e["sequence"]) for e in events(rpc, renewals["id"])] == [
        ("pipeline_created", 1),
        ("pipeline_changed", renamed["version"]),
    ]


def test_a_merge_moves_deals_to_the_survivor(rpc, customer):
    twin = rpc.customers.create_customer({"name": "A. Lovelace"}, True)
    deal = new_deal(rpc, twin)
    rpc.customers.merge_customers(customer["id"], {"merge_ids": [twin["id"]]}, "admin")
    wait_for(
        lambda: rpc.pipeline.get_deal(deal["id"])["customer_id"] == customer["id"],
        message="the deal to follow its customer",
    )
    [updated] = [e for e in events(rpc, deal["id"]) if e["event_type"] == "deal_updated"]
    assert updated["data"]["changes"] == {"customer_id": [twin["id"], customer["id"]]}
    assert updated["data"]["cause"] == "customer_merged"
    # Listed by the merged id, the deals are the survivor's.
    listed = rpc.pipeline.list_deals({"customer_id": twin["id"]})["items"]
    assert [(d["id"], d["customer_id"]) for d in listed] == [(deal["id"], customer["id"])]
    # A deal created for the merged id now lands on the survivor.
    assert new_deal(rpc, twin)["customer_id"] == customer["id"]


def test_an_erasure_removes_free_text_from_deals_and_their_events(rpc, customer):
    deal = new_deal(rpc, customer, title="Ada's private bet")
    rpc.pipeline.lose_deal(deal["id"], {"reason": "Ada moved to Paris"}, SAM)
    rpc.customers.erase_customer(customer["id"])
    wait_for(
        lambda: rpc.pipeline.get_deal(deal["id"])["title"] == "(erased)",
        message="the deal's title to go",
    )
    assert rpc.pipeline.get_deal(deal["id"])["lost_reason"] == "(erased)"
    logged = str(events(rpc, deal["id"]))
    assert "Ada" not in logged and "Paris" not in logged
    assert "Paris" not in str(rpc.pipeline.deal_history(deal["id"]))
    assert failure(lambda: new_deal(rpc, customer))[0] == "UnknownCustomer"
