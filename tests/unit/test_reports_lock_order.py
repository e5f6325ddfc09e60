"""Two reports instances applying overlapping batches must not deadlock.

apply_many applies the batched families in one order (by event type) so that two
instances lock view rows in the same order; an effect that is not batched (a pipeline
event) runs before every family, in arrival order. A pipeline event takes its
pipeline's lock exclusively and a deal family takes it shared, so one instance can hold
the pipeline lock and wait for the customers' view row while the other holds that row
(its customer family came first) and waits for the pipeline lock.
"""

import eventlet
from sqlalchemy import select

from crm_common.inbox import apply_many
from services.reports.models import AppliedEvent
from services.reports.service import APPLIERS
from tests.support import report_events
from tests.support.fakes import database_for
from tests.support.streams import customer_created

# Long enough for the other instance's statements to run meanwhile.
OVERLAP_SECONDS = 0.5


def effect_of(envelope):
    return APPLIERS[(envelope["producer"], envelope["event_type"])][0]


def slow_effect_of(envelope, lingering="customers"):
    """The real effects; the `lingering` producer's family then lingers in its
    transaction, as a larger batch's statements would."""
    effect = effect_of(envelope)
    if envelope["producer"] != lingering:
        return effect

    def linger(session, envelopes):
        effect.apply_all(session, envelopes)
        eventlet.sleep(OVERLAP_SECONDS)

    linger.apply_all = linger
    linger.locks = effect.locks
    return linger


def apply_and_commit(database, envelopes, effects):
    with database.session() as session:
        applied = apply_many(session, AppliedEvent, envelopes, effects)
        session.commit()
        return applied


def test_a_pipeline_event_and_a_deal_event_in_two_instances_batches_do_not_deadlock(
    make_db_url,
):
    database = database_for(make_db_url("postgresql", "reports_lock_order", schema="reports"))
    load = report_events.load
    # The pipeline, its views' state rows and one customer exist already.
    apply_and_commit(
        database,
        [load(report_events.pipeline_body()), load(customer_created("c-0"))],
        effect_of,
    )
    deal = report_events.life("d-1", ["lead"])[0]
    # Instance B: a customer and a deal of the pipeline; instance A: the pipeline
    # changed and another customer.
    second = eventlet.spawn(
        apply_and_commit,
        database,
        [load(customer_created("c-1")), load(deal)],
        slow_effect_of,
    )
    eventlet.sleep(0.1)  # B holds the customers' view row and lingers
    first = eventlet.spawn(
        apply_and_commit,
        database,
        [load(report_events.pipeline_body(2)), load(customer_created("c-2"))],
        effect_of,
    )
    outcomes = []
    for thread in (second, first):
        try:
            outcomes.append(len(thread.wait()))
        except Exception as exc:  # noqa: BLE001  the deadlock PostgreSQL breaks
            outcomes.append(repr(exc)[:200])
    # Each batch commits its two events: no instance was chosen as a deadlock's victim.
    assert outcomes == [2, 2]
    with database.session() as session:
        assert len(session.scalars(select(AppliedEvent.event_id)).all()) == 6


def test_two_instances_each_applying_a_deal_and_its_pipelines_change_do_not_deadlock(
    make_db_url,
):
    """Deal events hold their pipeline shared and its own events alone: a batch with both
    takes it alone from the start, or two such batches would each hold it shared and wait
    for the other to let go before taking it alone."""
    database = database_for(make_db_url("postgresql", "reports_lock_modes", schema="reports"))
    load = report_events.load
    apply_and_commit(database, [load(report_events.pipeline_body())], effect_of)
    batches = [
        [load(report_events.life(deal_id, ["lead"])[0]), load(report_events.pipeline_body(n))]
        for n, deal_id in ((2, "d-1"), (3, "d-2"))
    ]
    threads = [
        eventlet.spawn(
            apply_and_commit,
            database,
            batch,
            lambda envelope: slow_effect_of(envelope, lingering="pipeline"),
        )
        for batch in batches
    ]
    outcomes = []
    for thread in threads:
        try:
            outcomes.append(len(thread.wait()))
        except Exception as exc:  # noqa: BLE001  the deadlock PostgreSQL breaks
            outcomes.append(repr(exc)[:200])
    assert outcomes == [2, 2]
