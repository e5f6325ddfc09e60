"""The pipeline service's entrypoints on a real SQLite file, with the customers service faked."""

import pytest
from sqlalchemy import select

from services.pipeline.exceptions import PipelineNameTaken
from services.pipeline.models import OutboxEvent
from tests.support.pipeline import PipelineWorkers

STAGES = [{"name": "due", "probability": "0.5"}]


@pytest.fixture
def workers(tmp_path):
    workers = PipelineWorkers(f"sqlite:///{tmp_path}/pipeline.db")
    yield workers
    workers.close()


def events(workers, aggregate_id):
    with workers.database.session() as session:
        return [
            (row.event_type, row.sequence)
            for row in session.scalars(
                select(OutboxEvent)
                .where(OutboxEvent.aggregate_id == aggregate_id)
                .order_by(OutboxEvent.id)
            )
        ]


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
    assert events(workers, renewals["id"]) == [("pipeline_created", 1)]


@pytest.mark.parametrize(
    "change",
    [
        {"name": "Renewals 2027"},
        {"stages": [{"name": "quoted", "probability": "0.7"}]},
        {"name": "Renewals 2027", "stages": [{"name": "quoted", "probability": "0.7"}]},
        {"name": "Renewals"},  # the same name: still a change of the pipeline
    ],
)
def test_a_change_moves_the_version_on_exactly_once(workers, renewals, change):
    changed = workers().update_pipeline(renewals["id"], change)
    assert changed["version"] == renewals["version"] + 1
    assert changed["name"] == change.get("name", "Renewals")
    assert workers().get_pipeline(renewals["id"]) == changed
    assert events(workers, renewals["id"]) == [
        ("pipeline_created", 1),
        ("pipeline_changed", changed["version"]),
    ]


def test_creating_with_a_taken_name_is_a_conflict_naming_it(workers, renewals):
    with pytest.raises(PipelineNameTaken) as caught:
        workers().create_pipeline({"name": "Renewals", "stages": STAGES})
    assert "'Renewals'" in caught.value.message
