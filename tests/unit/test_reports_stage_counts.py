"""A deal counted again writes only its stages whose counts changed, removes those it no
longer counts in, and moves the funnel's totals by exactly the difference."""

from sqlalchemy import event, select

from services.reports import funnel, funnel_view
from services.reports.models import DealStageCounts, FunnelOwnerTotals, FunnelTotals
from services.reports.totals import add_many
from tests.unit.test_reports_funnel import (
    IDS,
    PIPELINE,
    apply_all,
    life,
    new_session,
    pipeline_event,
)


def rows(session, model):
    table = model.__table__
    return session.execute(select(table).order_by(*table.primary_key.columns)).all()


def counted(session):
    return {
        model: rows(session, model) for model in (DealStageCounts, FunnelTotals, FunnelOwnerTotals)
    }


def statements_while(session, action):
    """The SQL statements `action()` runs on the session's connection."""
    seen = []
    engine = session.get_bind()

    def note(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        action()
    finally:
        event.remove(engine, "before_cursor_execute", note)
    return seen


def test_a_new_event_rewrites_only_the_stages_it_moved(sqlite_templates, tmp_path):
    with new_session(sqlite_templates, tmp_path) as session:
        apply_all(session, [pipeline_event()] + life("a", ["lead", "qualified"]))
        stored = {row.stage_id: row for row in rows(session, DealStageCounts)}
        assert set(stored) == {IDS["lead"], IDS["qualified"]}
        run = statements_while(
            session,
            lambda: apply_all(session, life("a", ["lead", "qualified", "proposal"])[-1:]),
        )
        now = {row.stage_id: row for row in rows(session, DealStageCounts)}
        assert now[IDS["lead"]] == stored[IDS["lead"]]
        assert now[IDS["qualified"]] != stored[IDS["qualified"]]  # left: converted, dwell
        assert now[IDS["proposal"]].entered == now[IDS["proposal"]].current == 1
        assert not [sql for sql in run if sql.lstrip().upper().startswith("DELETE")]


def test_counting_a_deal_again_unchanged_writes_nothing(sqlite_templates, tmp_path):
    with new_session(sqlite_templates, tmp_path) as session:
        apply_all(session, [pipeline_event()] + life("a", ["lead", "qualified", "won"]))
        before = counted(session)
        run = statements_while(session, lambda: funnel_view.recount_deals(session, ["a"]))
        assert [sql for sql in run if not sql.lstrip().upper().startswith("SELECT")] == []
        assert counted(session) == before


def test_a_stage_the_deal_no_longer_counts_in_leaves_its_row_and_the_totals(
    sqlite_templates, tmp_path
):
    with new_session(sqlite_templates, tmp_path) as session:
        apply_all(session, [pipeline_event()] + life("a", ["lead", "qualified"]))
        session.commit()
        before = counted(session)
        # Counts the deal once had in a stage it no longer counts in (as a pipeline's
        # changed stages can leave behind), in its row and in the totals alike.
        [lead] = [row for row in before[DealStageCounts] if row.stage_id == IDS["lead"]]
        stale = dict.fromkeys(funnel.COUNTS, 0) | {"entered": 1, "current": 1}
        session.add(
            DealStageCounts(
                deal_id="a",
                stage_id=IDS["proposal"],
                pipeline_id=PIPELINE,
                owner=lead.owner,
                cohort_day=lead.cohort_day,
                **stale,
            )
        )
        add_many(
            session,
            FunnelTotals,
            funnel_view.FUNNEL_KEY,
            {(PIPELINE, IDS["proposal"], lead.owner, lead.cohort_day): stale},
        )
        add_many(
            session,
            FunnelOwnerTotals,
            funnel_view.OWNER_KEY,
            {(PIPELINE, IDS["proposal"], lead.owner): stale},
        )
        session.commit()
        funnel_view.recount_deals(session, ["a"])
        session.commit()
        after = counted(session)
        assert after[DealStageCounts] == before[DealStageCounts]
        for model in (FunnelTotals, FunnelOwnerTotals):
            assert counting(after[model]) == counting(before[model])


def counting(totals):
    """Totals rows that count something (a row moved back to zeros stays behind)."""
    return [row for row in totals if any(row._mapping[name] for name in funnel.COUNTS)]
