"""The segments report reads the sums a recompute keeps: they must be those of every
customer's segment, as a reading of the facts at the same moment gives them."""

from datetime import timedelta
from decimal import Decimal

from crm_common.envelope import load_envelope, make_envelope
from services.reports import segment_view
from services.reports.schemas import CustomerMergedData
from services.reports.service import apply_customer
from tests.unit.test_reports_funnel import T0, apply_all, life, new_session, pipeline_event
from tests.unit.test_reports_views import created

NOW = T0 + timedelta(days=10)


def merged(survivor_id, merged_ids, at):
    body = make_envelope(
        event_type="customer_merged",
        producer="customers",
        aggregate_id=survivor_id,
        sequence=2,
        occurred_at=at,
        data={"survivor_id": survivor_id, "merged_ids": merged_ids, "changes": {}},
    )
    return load_envelope(body, CustomerMergedData())


def recomputed(session):
    """The live report after a recompute at NOW, and the report of the facts at NOW."""
    segment_view.recompute(session, NOW)
    session.commit()
    return segment_view.segments_report(session), segment_view.segments_as_of(session, NOW, NOW)


def test_the_report_read_from_sums_is_the_report_of_every_customer(sqlite_templates, tmp_path):
    with new_session(sqlite_templates, tmp_path) as session:
        for number in range(1, 5):
            apply_customer(session, created(f"c-{number}", at=T0))
        # Both deals are c-1's (report_events' deals): 200.00 won in all.
        apply_all(
            session, [pipeline_event(), *life("a", ["lead", "won"]), *life("b", ["lead", "won"])]
        )
        live, from_facts = recomputed(session)
    assert live == from_facts
    assert sum(row["customers"] for row in live["items"]) == 4
    monetary = sum(
        row["customers"] * Decimal(row["avg_monetary"]) for row in live["items"] if row["customers"]
    )
    assert monetary == Decimal("200.00")


def test_a_customer_merged_away_leaves_the_sums(sqlite_templates, tmp_path):
    with new_session(sqlite_templates, tmp_path) as session:
        for number in range(1, 4):
            apply_customer(session, created(f"c-{number}", at=T0))
        before, _ = recomputed(session)
        apply_customer(session, merged("c-1", ["c-3"], at=T0 + timedelta(days=1)))
        after, from_facts = recomputed(session)
    assert after == from_facts
    assert [sum(row["customers"] for row in report["items"]) for report in (before, after)] == [
        3,
        2,
    ]
