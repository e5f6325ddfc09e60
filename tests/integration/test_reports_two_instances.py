"""Two reports instances consuming the same queues at once, from a shuffled stream with
repeats, build the views that one ordered pass builds."""

import pytest
from nameko.standalone.events import event_dispatcher
from sqlalchemy import func, select

from crm_common import migrations
from crm_common.config import db_url_key
from services.reports import funnel_view, ticket_view, views
from services.reports.models import AppliedEvent
from services.reports.service import APPLIERS, ReportsService
from tests.support import report_events
from tests.support.fakes import database_for
from tests.support.streams import shuffled_with_repeats
from tests.support.waiting import wait_for

DEAL_STEPS = [
    ["lead", "qualified", "proposal", "won"],
    ["lead", "qualified", "lost"],
    ["lead", "proposal", "qualified", "won"],
    ["qualified", "lead", "lost", ("reopen", "proposal"), "won"],
    ["lead"],
    ["proposal", "won", ("reopen", "lead"), "qualified"],
]
TICKET_STEPS = [
    [("assign", 1), ("respond", 2), ("resolve", 5), ("satisfaction", 6, 5)],
    [("assign", 1, "ann"), ("respond", 3), ("resolve", 4), ("reopen", 5), ("resolve", 9)],
    [("breach", 4, "first_response"), ("assign", 5), ("respond", 6)],
    [("assign", 0, "ann"), ("respond", 1), ("resolve", 2), ("close", 3), ("satisfaction", 4, 2)],
]


def ordered_stream():
    bodies = [report_events.pipeline_body()]
    for number in range(30):
        steps = DEAL_STEPS[number % len(DEAL_STEPS)]
        owner = ("sam", "kim", "ann")[number % 3]
        bodies += report_events.life(f"deal-{number}", steps, owner)
    for number in range(20):
        steps = TICKET_STEPS[number % len(TICKET_STEPS)]
        bodies += report_events.ticket_life(f"ticket-{number}", steps)
    return bodies


def answers(session):
    return {
        "funnel": funnel_view.funnel_report(session, pipeline_id=report_events.PIPELINE),
        "funnel_sam": funnel_view.funnel_report(
            session, pipeline_id=report_events.PIPELINE, owner="sam"
        ),
        "sales": views.sales_report(session),
        "service": ticket_view.service_report(session),
        "satisfaction": ticket_view.satisfaction_report(session, group_by="agent"),
    }


@pytest.mark.parametrize("db_kind", ["postgres"])
def test_two_instances_build_the_views_of_one_ordered_pass(
    crm_config, runner_factory, tmp_path, db_kind
):
    for _ in range(2):
        runner_factory(crm_config, ReportsService).start()
    ordered = ordered_stream()
    dispatch = event_dispatcher(crm_config)
    for body in shuffled_with_repeats(ordered, seed=11):
        dispatch(body["producer"], body["event_type"], body)

    live = database_for(crm_config[db_url_key("reports")])

    def applied():
        with live.session() as session:
            return session.scalar(select(func.count()).select_from(AppliedEvent))

    wait_for(lambda: applied() == len(ordered), timeout=60, message="every event applied")

    url = f"sqlite:///{tmp_path}/reference.db"
    migrations.upgrade("reports", url)
    with database_for(url).session() as reference, live.session() as session:
        for body in ordered:
            envelope = report_events.load(body)
            APPLIERS[(body["producer"], body["event_type"])][0](reference, envelope)
        reference.commit()
        expected = answers(reference)
        assert expected["service"]["opened"] == 20
        assert answers(session) == expected
