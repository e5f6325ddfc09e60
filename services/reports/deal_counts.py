"""Every deal's funnel counts made again at once from the stored moves: a rebuild's last step.

A rebuild stores each page's deal moves without counting their deals (each count
read back every move of the page's deals and wrote its rows and the totals' deltas,
a fifth of a rebuild's time) and counts every deal once at the end, here. On
PostgreSQL that is a few statements: `deal_stage_counts` computed from
`deal_moves` and `stage_facts` with window functions, the totals summed from it,
nothing through Python. Elsewhere it is funnel_view.recount_deals over every deal.

The statement follows funnel.deal_counts rule for rule (tests/integration/
test_reports_deal_counts_sql.py holds it to it); change both together.

Live deal and pipeline events take DEALS_LOCK shared (funnel_view.deal_locks,
pipeline_locks) before they read anything; the count takes it alone, so no
event counts its deal against rows the count is replacing, and none waits for
another's rows while the count waits for it.

The count changes the funnel's answers with no event of its own, so it moves the
funnel view's watermark itself: answers cached during the replay are keyed by it
(services/reports/cache.py).
"""

from sqlalchemy import delete, distinct, select, text, update

from crm_common.db import is_postgres, lock_for
from services.reports.funnel_view import DEALS_LOCK, FUNNEL_VIEW, recount_deals
from services.reports.models import (
    DealMove,
    DealStageCounts,
    FunnelOwnerTotals,
    FunnelTotals,
    ViewState,
)

COUNT_COLUMNS = "entered, converted, lost_here, dwell_seconds, dwell_count, current"

# Per deal: its newest move says its pipeline (whose stages, in their order, the counts
# use), owner and day created; every entry into a stage counts it entered, converted
# when a later entry goes to a later open stage of that pipeline or to a won one; every
# move out of a stage (but a creation) adds its dwell there unless the stage is not an
# open one, and a loss marks it lost_here; the newest move's stage is current.
_COUNT_SQL = f"""
INSERT INTO deal_stage_counts
    (deal_id, stage_id, pipeline_id, owner, cohort_day, {COUNT_COLUMNS})
WITH newest AS (
    SELECT DISTINCT ON (deal_id) deal_id, pipeline_id, stage_id,
        coalesce(owner, '') AS owner, to_char(created_at, 'YYYY-MM-DD') AS cohort_day
    FROM deal_moves ORDER BY deal_id, sequence DESC
), moves AS (
    SELECT move.deal_id, move.sequence, move.kind, move.from_stage_id, move.to_stage_id,
        move.dwell_seconds, newest.pipeline_id AS counted_in
    FROM deal_moves AS move JOIN newest USING (deal_id)
), stages AS (
    SELECT stage_id, pipeline_id, kind, position FROM stage_facts WHERE position IS NOT NULL
), entries AS (
    SELECT moves.deal_id, moves.sequence, moves.to_stage_id AS stage_id, stages.kind,
        stages.position
    FROM moves LEFT JOIN stages
        ON stages.stage_id = moves.to_stage_id AND stages.pipeline_id = moves.counted_in
    WHERE moves.to_stage_id IS NOT NULL AND moves.kind <> 'updated'
), onwards AS (
    SELECT deal_id, stage_id, position,
        bool_or(kind = 'won') OVER later AS won_later,
        max(CASE WHEN kind = 'open' THEN position END) OVER later AS furthest_later
    FROM entries
    WINDOW later AS (
        PARTITION BY deal_id ORDER BY sequence ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING
    )
), parts AS (
    SELECT deal_id, stage_id, 1 AS entered,
        CASE WHEN won_later OR (position IS NOT NULL AND furthest_later > position)
            THEN 1 ELSE 0 END AS converted,
        0 AS lost_here, 0 AS dwell_seconds, 0 AS dwell_count, 0 AS current
    FROM onwards
    UNION ALL
    SELECT moves.deal_id, moves.from_stage_id, 0, 0,
        CASE WHEN moves.kind = 'lost' THEN 1 ELSE 0 END,
        CASE WHEN dwelt THEN moves.dwell_seconds ELSE 0 END,
        CASE WHEN dwelt THEN 1 ELSE 0 END,
        0
    FROM moves LEFT JOIN stages
        ON stages.stage_id = moves.from_stage_id AND stages.pipeline_id = moves.counted_in,
        LATERAL (
            SELECT coalesce(stages.kind, 'open') = 'open' AND moves.dwell_seconds IS NOT NULL
        ) AS leaving (dwelt)
    WHERE moves.from_stage_id IS NOT NULL AND moves.kind <> 'created'
        AND (moves.kind = 'lost' OR dwelt)
    UNION ALL
    SELECT deal_id, stage_id, 0, 0, 0, 0, 0, 1 FROM newest
)
SELECT parts.deal_id, parts.stage_id, newest.pipeline_id, newest.owner, newest.cohort_day,
    max(entered), max(converted), max(lost_here), coalesce(sum(dwell_seconds), 0),
    sum(dwell_count), max(current)
FROM parts JOIN newest USING (deal_id)
GROUP BY parts.deal_id, parts.stage_id, newest.pipeline_id, newest.owner, newest.cohort_day
"""

_TOTALS_SQL = f"""
INSERT INTO {{table}} ({{key}}, {COUNT_COLUMNS})
SELECT {{key}}, sum(entered), sum(converted), sum(lost_here), sum(dwell_seconds),
    sum(dwell_count), sum(current)
FROM deal_stage_counts GROUP BY {{key}}
"""


def count_every_deal(session):
    """Make every deal's funnel counts and the funnel's totals again from the stored moves,
    in the session's transaction (taking DEALS_LOCK alone first), and move the funnel
    view's watermark."""
    lock_for(session, DEALS_LOCK)
    if is_postgres(session.get_bind()):
        _count_in_sql(session)
    else:
        recount_deals(session, session.scalars(select(distinct(DealMove.deal_id))).all())
    # The funnel's answers changed with no event to move the watermark its cached answers
    # are keyed by (services/reports/cache.py): the uncounted funnel read while the replay
    # ran would be served again, as the rebuilt one. Every writer of that row holds
    # DEALS_LOCK shared, so this waits for none.
    session.execute(
        update(ViewState)
        .where(ViewState.view == FUNNEL_VIEW)
        .values(events_applied=ViewState.events_applied + 1)
    )


def _count_in_sql(session):
    for model in (DealStageCounts, FunnelTotals, FunnelOwnerTotals):
        session.execute(delete(model))
    session.execute(text(_COUNT_SQL))
    for model, key in (
        (FunnelTotals, "pipeline_id, stage_id, owner, cohort_day"),
        (FunnelOwnerTotals, "pipeline_id, stage_id, owner"),
    ):
        session.execute(text(_TOTALS_SQL.format(table=model.__tablename__, key=key)))
