"""A customer merge and a user's update racing on the same deal, on PostgreSQL's row locks."""

import eventlet
import pytest
from sqlalchemy import select

from services.pipeline.models import Deal, OutboxEvent
from tests.support.pipeline import PipelineWorkers, customer_event

ADA = "0b5c3d0e-8f7a-4c2e-9d1b-2a3f4e5d6c7b"
TWIN = "1c6d4e1f-9a8b-4d3f-8e2c-3b4a5f6e7d8c"
SAM = {"subject": "sam", "own_only": True}


@pytest.fixture
def workers(make_db_url):
    workers = PipelineWorkers(make_db_url("postgres", "pipeline", schema="pipeline"))
    yield workers
    workers.close()


def test_a_merge_waits_for_a_users_update_of_a_deal_then_moves_it(workers, monkeypatch):
    monkeypatch.setattr("crm_common.inbox.RETRY_PAUSE_SECONDS", 0)
    payload = {"customer_id": TWIN, "title": "Engine", "amount": "10", "currency": "EUR"}
    first, second = (workers().create_deal(payload, SAM) for _ in range(2))
    # A user's update of one deal: written, not committed yet.
    user = workers.database.session()
    user.get(Deal, second["id"]).title = "Difference engine"
    user.flush()

    merged = customer_event("customer_merged", ADA, {"survivor_id": ADA, "merged_ids": [TWIN]})
    merging = eventlet.spawn(workers().apply_customer_merged, merged)
    eventlet.sleep(0.5)
    assert not merging.dead, "the merge should wait for the user's row"
    user.commit()
    user.close()
    # Had the merge read the deal before the user's commit, its write would find
    # the version moved on (StaleDataError) and the event would go back to the queue.
    merging.wait()

    with workers.database.session() as session:
        deals = {deal.id: deal for deal in session.scalars(select(Deal))}
        assert {deal.customer_id for deal in deals.values()} == {ADA}
        assert deals[second["id"]].title == "Difference engine"  # the user's change stays
        updates = session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.event_type == "deal_updated")
            .order_by(OutboxEvent.aggregate_id)
        ).all()
    assert sorted((u.aggregate_id, u.sequence) for u in updates) == sorted(
        [(first["id"], 2), (second["id"], 3)]
    )
    assert all(u.body["data"]["changes"] == {"customer_id": [TWIN, ADA]} for u in updates)
