"""Changes of one pipeline or deal at once, on PostgreSQL: they take turns, or one is a 409."""

import eventlet
import pytest
from sqlalchemy import update

from services.pipeline import store
from services.pipeline.exceptions import ConcurrentDealUpdate, ConcurrentPipelineUpdate
from services.pipeline.models import Deal, Pipeline
from tests.support.pipeline import PipelineWorkers

STAGES = [{"name": "due", "probability": "0.5"}]
QUOTED = [{"name": "quoted", "probability": "0.7"}]
CUSTOMER = "0b5c3d0e-8f7a-4c2e-9d1b-2a3f4e5d6c7b"


@pytest.fixture
def workers(make_db_url):
    workers = PipelineWorkers(make_db_url("postgres", "pipeline", schema="pipeline"))
    yield workers
    workers.close()


@pytest.fixture
def renewals(workers):
    return workers().create_pipeline({"name": "Renewals", "stages": STAGES})


def step_in_after(monkeypatch, name, step):
    """Run `step()` once, just after the next call of `store.<name>`: between read and write."""
    original = getattr(store, name)

    def then_step(*args, **kwargs):
        answer = original(*args, **kwargs)
        monkeypatch.setattr(store, name, original)
        step()
        return answer

    monkeypatch.setattr(store, name, then_step)


def bump_version_elsewhere(workers, model, row_id):
    """A writer that does not take the row's lock, committing between a change's read and write."""

    def bump():
        with workers.database.session() as other:
            other.execute(update(model).where(model.id == row_id).values(version=model.version + 1))
            other.commit()

    return bump


def test_a_change_waits_for_the_one_in_progress_then_applies_on_top(workers, renewals, monkeypatch):
    paused, resume = eventlet.Event(), eventlet.Event()

    def hold():
        paused.send()
        resume.wait()

    step_in_after(monkeypatch, "plan_stages", hold)
    first = eventlet.spawn(workers().update_pipeline, renewals["id"], {"stages": QUOTED})
    paused.wait()
    second = eventlet.spawn(workers().update_pipeline, renewals["id"], {"name": "Renewals 2027"})
    eventlet.sleep(0.5)
    assert not second.dead, "the second change should wait for the first"
    resume.send()
    # Had the second read the pipeline before the first committed, its write
    # would find the version moved on (StaleDataError): a 500 at the gateway.
    stages, renamed = first.wait(), second.wait()

    assert stages["version"] == renewals["version"] + 1
    assert renamed["version"] == renewals["version"] + 2
    assert renamed["name"] == "Renewals 2027"
    assert [s["name"] for s in renamed["stages"]] == ["quoted", "won", "lost"]
    assert workers.events(renewals["id"]) == [
        ("pipeline_created", 1),
        ("pipeline_changed", 2),
        ("pipeline_changed", 3),
    ]


def test_a_change_that_meets_a_version_it_did_not_read_is_a_conflict(
    workers, renewals, monkeypatch
):
    bump = bump_version_elsewhere(workers, Pipeline, renewals["id"])
    step_in_after(monkeypatch, "plan_stages", bump)
    with pytest.raises(ConcurrentPipelineUpdate) as caught:
        workers().update_pipeline(renewals["id"], {"name": "Renewals 2027", "stages": QUOTED})
    assert caught.value.details == {"id": renewals["id"]}
    assert workers().get_pipeline(renewals["id"])["name"] == "Renewals"
    assert workers.events(renewals["id"]) == [("pipeline_created", 1)]


def test_a_deal_change_that_meets_a_version_it_did_not_read_is_a_conflict(workers, monkeypatch):
    manager = {"subject": "maria", "own_only": False}
    payload = {"customer_id": CUSTOMER, "title": "Engine", "amount": "10", "currency": "EUR"}
    deal = workers().create_deal(payload, manager)
    step_in_after(monkeypatch, "deal_fields", bump_version_elsewhere(workers, Deal, deal["id"]))
    with pytest.raises(ConcurrentDealUpdate) as caught:
        workers().update_deal(deal["id"], {"title": "Difference engine"}, manager)
    assert caught.value.details == {"id": deal["id"]}
    assert workers().get_deal(deal["id"])["title"] == "Engine"
