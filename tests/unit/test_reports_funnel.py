"""The funnel against hand-computed deals, and against shuffled, repeated event streams."""

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.reports import funnel
from services.reports.funnel_view import funnel_as_of, funnel_report
from services.reports.service import apply_deal, apply_pipeline
from tests.support import report_events
from tests.support.fakes import database_for
from tests.support.streams import as_delivered

T0 = report_events.T0
PIPELINE = report_events.PIPELINE
STAGES = report_events.STAGES
IDS = report_events.IDS
stage_list = report_events.stage_list


def pipeline_event(sequence=1, stages=None):
    return report_events.load(report_events.pipeline_body(sequence, stages))


def life(deal_id, steps, owner="sam", start=T0):
    return [report_events.load(body) for body in report_events.life(deal_id, steps, owner, start)]


def new_session(sqlite_templates, folder, name="reports"):
    """A session on a new database `name` in `folder`, at the reports' newest schema."""
    return database_for(sqlite_templates.copy("reports", folder / f"{name}.db")).session()


def apply_all(session, events):
    for event in events:
        if event["event_type"].startswith("pipeline"):
            apply_pipeline(session, event)
        else:
            apply_deal(session, event)
    session.commit()


def by_stage(report):
    return {row["stage"]: row for row in report["stages"]}


def test_the_funnel_of_hand_computed_deals(sqlite_templates, tmp_path):
    events = [pipeline_event()]
    events += life("a", ["lead", "qualified", "proposal", "won"])
    events += life("b", ["lead", "qualified", "lost"])
    events += life("c", ["lead", "proposal"])  # skips qualified
    events += life("d", ["qualified", "lead"], owner="kim")  # moves back
    with new_session(sqlite_templates, tmp_path) as session:
        apply_all(session, events)
        report = funnel_report(session)
    stages = by_stage(report)
    assert [row["stage"] for row in report["stages"]] == ["lead", "qualified", "proposal", "won"]
    assert (stages["lead"]["entered"], stages["lead"]["converted"], stages["lead"]["current"]) == (
        4,
        3,
        1,
    )
    assert stages["lead"]["conversion_rate"] == 0.75
    assert stages["lead"]["drop_rate"] == 0.0
    # qualified: a, b, d entered; a converted; b lost there; d went back.
    assert (stages["qualified"]["entered"], stages["qualified"]["converted"]) == (3, 1)
    assert stages["qualified"]["conversion_rate"] == pytest.approx(1 / 3)
    assert stages["qualified"]["drop_rate"] == pytest.approx(1 / 3)
    # proposal: a (won) and c (still there).
    assert (stages["proposal"]["entered"], stages["proposal"]["converted"]) == (2, 1)
    assert stages["proposal"]["current"] == 1
    assert (stages["won"]["entered"], stages["won"]["current"]) == (1, 1)
    assert stages["won"]["conversion_rate"] is None
    # Dwell in lead: a 2 h, b 2 h, c 2 h (the second step of each is at +2 h, dwell 2 h).
    assert stages["lead"]["avg_dwell_hours"] == 2.0
    assert (report["won"], report["lost"], report["win_rate"]) == (1, 1, 0.5)
    assert report["bottleneck"] == "qualified"


def test_filters_by_owner_and_creation_day(sqlite_templates, tmp_path):
    events = [pipeline_event()]
    events += life("a", ["lead", "won"], owner="sam", start=T0)
    events += life("b", ["lead", "lost"], owner="kim", start=T0 + timedelta(days=3))
    with new_session(sqlite_templates, tmp_path) as session:
        apply_all(session, events)
        kim = funnel_report(session, owner="kim")
        late = funnel_report(session, days=((T0 + timedelta(days=1)).date().isoformat(), None))
    assert (kim["won"], kim["lost"], by_stage(kim)["lead"]["entered"]) == (0, 1, 1)
    assert (late["won"], late["lost"]) == (0, 1)


def test_time_travel_counts_only_what_had_happened(sqlite_templates, tmp_path):
    events = [pipeline_event()] + life("a", ["lead", "qualified", "won"])
    with new_session(sqlite_templates, tmp_path) as session:
        apply_all(session, events)
        before_win = funnel_as_of(session, T0 + timedelta(hours=3))
        now = funnel_as_of(session, T0 + timedelta(days=30))
        live = funnel_report(session)
    assert by_stage(before_win)["qualified"]["current"] == 1
    assert before_win["won"] == 0
    assert now["stages"] == live["stages"] and now["win_rate"] == live["win_rate"] == 1.0


def test_a_new_stage_order_counts_every_deal_again(sqlite_templates, tmp_path):
    events = [pipeline_event()] + life("a", ["lead", "proposal"])
    reordered = stage_list()
    reordered[0]["position"], reordered[2]["position"] = 2, 0  # proposal before lead
    with new_session(sqlite_templates, tmp_path) as session:
        apply_all(session, events)
        assert by_stage(funnel_report(session))["lead"]["converted"] == 1
        apply_all(session, [pipeline_event(2, reordered)])
        assert by_stage(funnel_report(session))["lead"]["converted"] == 0


LIVES = st.lists(
    st.tuples(
        st.sampled_from(["lead", "qualified", "proposal"]),
        st.lists(
            st.one_of(
                st.sampled_from(["lead", "qualified", "proposal", "won", "lost"]),
                st.tuples(st.just("reopen"), st.sampled_from(["lead", "proposal"])),
            ),
            max_size=5,
        ),
        st.sampled_from(["sam", "kim"]),
    ),
    min_size=1,
    max_size=6,
)


def valid_steps(first, steps):
    """Drop steps the pipeline service would refuse (a move of a closed deal, a no-op move)."""
    kept, stage, status = [first], first, "open"
    for step in steps:
        if isinstance(step, tuple):
            if status != "open":
                kept.append(step)
                stage, status = step[1], "open"
        elif status == "open" and step != stage:
            kept.append(step)
            stage = step
            status = step if step in ("won", "lost") else "open"
    return kept


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lives=LIVES, seed=st.integers(0, 10**6))
def test_shuffled_and_repeated_events_give_the_funnel_of_the_ordered_stream(
    sqlite_templates, tmp_path_factory, lives, seed
):
    ordered = [pipeline_event()]
    for number, (first, steps, owner) in enumerate(lives):
        ordered += life(f"d{number}", valid_steps(first, steps), owner=owner)
    base = tmp_path_factory.mktemp("funnel")
    with (
        new_session(sqlite_templates, base, "ordered") as one,
        new_session(sqlite_templates, base, "shuffled") as other,
    ):
        apply_all(one, ordered)
        for event in as_delivered(ordered, seed):
            apply_all(other, [event])
        for owner in (None, "kim"):
            assert funnel_report(other, owner=owner) == funnel_report(one, owner=owner)
            # Without days the sums per owner answer, with them those per day: they agree.
            every_day = funnel_report(other, owner=owner, days=(T0.date().isoformat(), None))
            assert every_day == funnel_report(other, owner=owner)


def test_deal_counts_ignore_dwell_in_closing_stages():
    pipeline = funnel.Pipeline(
        {IDS[name]: funnel.Stage(IDS[name], name, kind, n) for n, (name, kind) in enumerate(STAGES)}
    )
    moves = [
        funnel.Move(1, "created", None, IDS["lead"], None, IDS["lead"], "open"),
        funnel.Move(2, "won", IDS["lead"], IDS["won"], 60, IDS["won"], "won"),
        funnel.Move(3, "reopened", IDS["won"], IDS["lead"], 7200, IDS["lead"], "open"),
    ]
    counts = funnel.deal_counts(moves, pipeline)
    assert counts[IDS["lead"]].dwell_seconds == 60
    assert IDS["won"] not in counts or counts[IDS["won"]].dwell_count == 0
    assert counts[IDS["lead"]].converted == 1 and counts[IDS["lead"]].current == 1
