"""Customer, ticket and satisfaction events applied many at once (the inbox's group commit,
a rebuild's page) build the views that one ordered pass of single events builds, whatever
the batches and the order: newest by sequence, merged stays merged, one answer a ticket."""

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_common.envelope import make_envelope
from crm_common.inbox import apply_many
from services.reports import ticket_view, views
from services.reports.models import AppliedEvent, CustomerFact, SatisfactionFact, TicketFact
from tests.support import report_events
from tests.support.streams import shuffled_with_repeats
from tests.unit.test_reports_batches import apply_in_random_batches, contents, effect_of
from tests.unit.test_reports_funnel import new_session

COMPARED = (CustomerFact, TicketFact, SatisfactionFact)
T0 = report_events.T0
STATUSES = ("lead", "prospect", "customer")
OWNERS = (None, "kim", "sam")
CUSTOMERS = st.lists(
    st.tuples(
        st.sampled_from(STATUSES),
        st.sampled_from(OWNERS),
        # Updates: (field, new value), in order.
        st.lists(
            st.one_of(
                st.tuples(st.just("status"), st.sampled_from(STATUSES)),
                st.tuples(st.just("owner"), st.sampled_from(OWNERS)),
            ),
            max_size=4,
        ),
    ),
    min_size=1,
    max_size=5,
)
# (survivor, merged) by customer number; pairs that would merge twice are left out.
MERGES = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), max_size=3)
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("assign"), st.sampled_from(("kim", "ann"))),
        st.sampled_from([("respond",), ("resolve",), ("close",), ("reopen",)]),
        st.tuples(st.just("breach"), st.sampled_from(("first_response", "resolution"))),
    ),
    max_size=6,
)
# Each ticket: its steps, and its satisfaction score if it got one.
TICKETS = st.lists(st.tuples(STEPS, st.one_of(st.none(), st.integers(1, 5))), max_size=4)


def customer_body(event_type, customer_id, sequence, data):
    return make_envelope(
        event_type=event_type,
        producer="customers",
        aggregate_id=customer_id,
        sequence=sequence,
        occurred_at=T0 + timedelta(minutes=sequence),
        data=data,
    )


def customer_bodies(customers, merges):
    """Each customer created then updated; then the merges, each the survivor's next event."""
    bodies, sequences, owners = [], {}, {}
    for number, (status, owner, updates) in enumerate(customers):
        customer_id = f"c-{number}"
        data = {
            "customer_id": customer_id,
            "status": status,
            "owner": owner,
            "created_at": T0.isoformat(),
        }
        bodies.append(customer_body("customer_created", customer_id, 1, data))
        for sequence, (field, new) in enumerate(updates, start=2):
            changes = {field: [None, new]}
            data = {"customer_id": customer_id, "changes": changes}
            bodies.append(customer_body("customer_updated", customer_id, sequence, data))
        sequences[customer_id], owners[customer_id] = len(updates) + 1, owner
    merged = set()
    for survivor, gone in merges:
        survivor_id, merged_id = f"c-{survivor}", f"c-{gone}"
        if {survivor_id, merged_id} - set(sequences) or survivor_id == merged_id:
            continue
        if {survivor_id, merged_id} & merged:
            continue
        merged.add(merged_id)
        sequences[survivor_id] += 1
        data = {
            "survivor_id": survivor_id,
            "merged_ids": [merged_id],
            "changes": {"owner": [owners[survivor_id], owners[merged_id]]},
        }
        bodies.append(customer_body("customer_merged", survivor_id, sequences[survivor_id], data))
    return bodies


def ticket_bodies(tickets):
    bodies = []
    for number, (steps, score) in enumerate(tickets):
        timed = [(name, hours, *value) for hours, (name, *value) in enumerate(steps, start=1)]
        if score is not None:
            timed.append(("satisfaction", len(steps) + 1, score))
        bodies += report_events.ticket_life(f"t-{number}", timed)
    return bodies


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    customers=CUSTOMERS,
    merges=MERGES,
    tickets=TICKETS,
    seed=st.integers(0, 10**6),
    batch_size=st.integers(2, 40),
)
def test_batches_of_shuffled_repeated_customer_and_ticket_events_build_one_pass_views(
    sqlite_templates, tmp_path_factory, customers, merges, tickets, seed, batch_size
):
    bodies = customer_bodies(customers, merges) + ticket_bodies(tickets)
    ordered = [report_events.load(body) for body in bodies]
    base = tmp_path_factory.mktemp("fact_batches")
    with (
        new_session(sqlite_templates, base, "ordered") as one,
        new_session(sqlite_templates, base, "batched") as other,
    ):
        for envelope in ordered:
            apply_many(one, AppliedEvent, [envelope], effect_of)
            one.commit()
        apply_in_random_batches(other, shuffled_with_repeats(ordered, seed), seed, batch_size)
        assert contents(other, COMPARED) == contents(one, COMPARED)
        assert views.customers_by_status_owner(other) == views.customers_by_status_owner(one)
        assert ticket_view.service_report(other) == ticket_view.service_report(one)
        for group_by in (None, "agent"):
            assert ticket_view.satisfaction_report(
                other, group_by=group_by
            ) == ticket_view.satisfaction_report(one, group_by=group_by)
