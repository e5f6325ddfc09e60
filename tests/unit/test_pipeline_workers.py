"""The pipeline service's entrypoints on a real SQLite file, with the customers service faked."""

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from services.pipeline.exceptions import NotDealOwner, PipelineNameTaken
from services.pipeline.models import AppliedEvent, CustomerFate
from tests.support.pipeline import PipelineWorkers, customer_event

STAGES = [{"name": "due", "probability": "0.5"}]


@pytest.fixture
def workers(make_db_url):
    workers = PipelineWorkers(make_db_url("sqlite", "pipeline", schema="pipeline"))
    yield workers
    workers.close()


@pytest.fixture
def renewals(workers):
    workers().create_pipeline({"name": "Partners", "stages": STAGES})
    return workers().create_pipeline({"name": "Renewals", "stages": STAGES})


@pytest.mark.parametrize(
    "change",
    [
        {"name": "Partners"},
        # With stages too: the stage plan's queries used to flush the new name first.
        {"name": "Partners", "stages": [{"name": "quoted", "probability": "0.7"}]},
    ],
)
def test_renaming_to_a_taken_name_is_a_conflict_naming_it_and_changes_nothing(
    workers, renewals, change
):
    with pytest.raises(PipelineNameTaken) as caught:
        workers().update_pipeline(renewals["id"], change)
    assert "'Partners'" in caught.value.message
    assert caught.value.details == {"name": "Partners"}
    assert list(caught.value.fields) == ["name"]
    assert workers().get_pipeline(renewals["id"]) == renewals
    assert workers.events(renewals["id"]) == [("pipeline_created", 1)]


@pytest.mark.parametrize(
    "change",
    [
        {"name": "Renewals 2027"},
        {"stages": [{"name": "quoted", "probability": "0.7"}]},
        {"name": "Renewals 2027", "stages": [{"name": "quoted", "probability": "0.7"}]},
        {"name": "Renewals", "stages": [{"name": "quoted", "probability": "0.7"}]},
    ],
)
def test_a_change_moves_the_version_on_exactly_once(workers, renewals, change):
    changed = workers().update_pipeline(renewals["id"], change)
    assert changed["version"] == renewals["version"] + 1
    assert changed["name"] == change.get("name", "Renewals")
    assert workers().get_pipeline(renewals["id"]) == changed
    assert workers.events(renewals["id"]) == [
        ("pipeline_created", 1),
        ("pipeline_changed", changed["version"]),
    ]


def same_stages(pipeline, **changed):
    """The pipeline's open stages as a change lists them, with `changed` fields in the first."""
    plans = [
        {"id": stage["id"], "name": stage["name"], "probability": str(stage["probability"])}
        for stage in pipeline["stages"]
        if stage["kind"] == "open"
    ]
    plans[0].update(changed)
    return plans


@pytest.mark.parametrize(
    "change",
    [
        lambda pipeline: {},
        lambda pipeline: {"name": "Renewals"},
        lambda pipeline: {"stages": same_stages(pipeline)},
        lambda pipeline: {"stages": same_stages(pipeline, name="Due", probability="0.50")},
        lambda pipeline: {"name": "Renewals", "stages": same_stages(pipeline)},
    ],
    ids=["empty", "same name", "same stages", "same stages written otherwise", "both same"],
)
def test_a_change_that_changes_nothing_answers_the_pipeline_as_it_is(workers, renewals, change):
    assert workers().update_pipeline(renewals["id"], change(renewals)) == renewals
    assert workers.events(renewals["id"]) == [("pipeline_created", 1)]


@pytest.mark.parametrize(
    "stages",
    [
        # The same name without the id: a new stage in place of the old one.
        lambda pipeline: [{"name": "due", "probability": "0.5"}],
        lambda pipeline: same_stages(pipeline, probability="0.6"),
        lambda pipeline: same_stages(pipeline, name="overdue"),
        lambda pipeline: [*same_stages(pipeline), {"name": "quoted", "probability": "0.7"}],
    ],
    ids=["same name, no id", "probability", "name", "one more"],
)
def test_any_difference_in_the_stages_is_a_change(workers, renewals, stages):
    changed = workers().update_pipeline(renewals["id"], {"stages": stages(renewals)})
    assert changed["version"] == renewals["version"] + 1
    assert workers.events(renewals["id"])[-1] == ("pipeline_changed", changed["version"])


def test_creating_with_a_taken_name_is_a_conflict_naming_it(workers, renewals):
    with pytest.raises(PipelineNameTaken) as caught:
        workers().create_pipeline({"name": "Renewals", "stages": STAGES})
    assert "'Renewals'" in caught.value.message


CUSTOMER = "0b5c3d0e-8f7a-4c2e-9d1b-2a3f4e5d6c7b"
MANAGER = {"subject": "maria", "own_only": False}
DEAL = {"customer_id": CUSTOMER, "title": "Engine", "amount": "10", "currency": "EUR"}


@pytest.fixture
def sams_deal(workers):
    return workers().create_deal({**DEAL, "owner": "sam"}, MANAGER)


# An RPC caller that does not say who it is, or whether it is held to its own deals.
UNSAID = [None, {}, {"subject": "kim"}, {"subject": None, "own_only": True}]


@pytest.mark.parametrize("actor", UNSAID)
def test_a_caller_without_a_full_actor_changes_no_one_elses_deal(workers, sams_deal, actor):
    deal_id = sams_deal["id"]
    steps = [
        lambda worker: worker.update_deal(deal_id, {"title": "Mine now"}, actor),
        lambda worker: worker.move_deal(deal_id, {"stage": "qualified"}, actor),
        lambda worker: worker.win_deal(deal_id, actor),
        lambda worker: worker.lose_deal(deal_id, {"reason": "No budget"}, actor),
        lambda worker: worker.create_deal({**DEAL, "owner": "sam"}, actor),
    ]
    for step in steps:
        with pytest.raises(NotDealOwner):
            step(workers())
    assert workers().get_deal(deal_id) == sams_deal


def test_someone_elses_deal_is_refused_before_its_new_customer_is_looked_up(workers, sams_deal):
    asked = []
    workers.customers.resolve_customer = lambda customer_id: (
        asked.append(customer_id)
        or {
            "id": customer_id,
            "state": "missing",
        }
    )
    kim = {"subject": "kim", "own_only": True}
    with pytest.raises(NotDealOwner):
        workers().update_deal(sams_deal["id"], {"customer_id": str(uuid.uuid4())}, kim)
    assert asked == []
    assert workers().get_deal(sams_deal["id"]) == sams_deal


@pytest.mark.parametrize("actor", [None, {}, {"own_only": True}])
def test_a_caller_that_is_no_one_creates_no_deal(workers, actor):
    with pytest.raises(NotDealOwner):
        workers().create_deal(DEAL, actor)


@pytest.mark.parametrize(
    "patch",
    [
        {},
        {"title": "Engine", "amount": "10.00", "currency": "eur"},
        {"owner": "sam", "expected_close_date": None, "customer_id": CUSTOMER},
    ],
)
def test_a_deal_update_that_changes_nothing_answers_the_deal_as_it_is(workers, sams_deal, patch):
    assert workers().update_deal(sams_deal["id"], patch, MANAGER) == sams_deal
    assert workers.events(sams_deal["id"]) == [("deal_created", 1)]


def test_the_owner_saying_only_who_it_is_still_changes_its_deal(workers, sams_deal):
    moved = workers().move_deal(sams_deal["id"], {"stage": "qualified"}, {"subject": "sam"})
    assert moved["stage"] == "qualified"


def applied_events(workers):
    with workers.database.session() as session:
        return session.scalars(select(AppliedEvent.event_type)).all()


TWIN = "1c6d4e1f-9a8b-4d3f-8e2c-3b4a5f6e7d8c"


@pytest.mark.parametrize(
    ("event_type", "data"),
    [
        ("customer_merged", {"survivor_id": CUSTOMER}),
        ("customer_merged", {"survivor_id": CUSTOMER, "merged_ids": TWIN}),
        ("customer_merged", {"merged_ids": [TWIN]}),
        ("customer_erased", {"erased_at": "2026-03-02T09:00:00+00:00"}),
        ("customer_erased", {"customer_id": ""}),
    ],
)
def test_a_malformed_customer_event_is_rejected_with_nothing_changed(
    workers, event_type, data, caplog
):
    deal = workers().create_deal({**DEAL, "customer_id": TWIN}, MANAGER)
    handler = getattr(workers(), f"apply_{event_type}")
    handler(customer_event(event_type, CUSTOMER, data))  # raising would requeue it forever
    assert "rejected invalid event" in caplog.text
    assert applied_events(workers) == []
    assert workers().get_deal(deal["id"]) == deal


def test_customer_events_with_fields_the_pipeline_does_not_read_apply(workers):
    deal = workers().create_deal({**DEAL, "customer_id": TWIN}, MANAGER)
    merged = {"survivor_id": CUSTOMER, "merged_ids": [TWIN], "changes": {}, "by": "admin"}
    workers().apply_customer_merged(customer_event("customer_merged", CUSTOMER, merged))
    assert workers().get_deal(deal["id"])["customer_id"] == CUSTOMER
    erased = {"customer_id": CUSTOMER, "erased_at": "2026-03-02T09:00:00+00:00"}
    workers().apply_customer_erased(customer_event("customer_erased", CUSTOMER, erased, 3))
    assert workers().get_deal(deal["id"])["title"] == "(erased)"
    assert sorted(applied_events(workers)) == ["customer_erased", "customer_merged"]


def test_an_erasure_is_recorded_at_the_moment_the_customers_service_erased(workers):
    erased = {"customer_id": CUSTOMER, "erased_at": "2026-03-02T09:00:00+00:00"}
    # Delivered a while later, as an event waiting in its queue would be.
    workers().apply_customer_erased(customer_event("customer_erased", CUSTOMER, erased))
    with workers.database.session() as session:
        fate = session.get(CustomerFate, CUSTOMER)
    assert fate.erased_at == datetime(2026, 3, 2, 9, tzinfo=UTC)


def test_deals_listed_by_a_merged_customer_are_the_survivors(workers):
    deal = workers().create_deal({**DEAL, "customer_id": TWIN}, MANAGER)
    merged = {"survivor_id": CUSTOMER, "merged_ids": [TWIN]}
    workers().apply_customer_merged(customer_event("customer_merged", CUSTOMER, merged))
    listed = workers().list_deals({"customer_id": TWIN})["items"]
    assert [(d["id"], d["customer_id"]) for d in listed] == [(deal["id"], CUSTOMER)]
