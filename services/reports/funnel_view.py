"""The funnel view in the reports database: moves in, totals out (rules in funnel.py).

Each deal event is stored as a `DealMove`. The deal's contribution to the
funnel (`DealStageCounts`, per stage) is then computed again from all its
moves, and the difference to what it contributed before is added to
`FunnelTotals`, the sums per (pipeline, stage, owner, day created) that live
answers filtered by days read, and to `FunnelOwnerTotals`, the same sums per
(pipeline, stage, owner) that the other live answers read. Time-travel
answers (`as_of`) are computed from the moves themselves.
"""

from collections import defaultdict

from sqlalchemy import delete, func, select, tuple_

from crm_common.db import insert_new, replace_rows
from crm_common.errors import NotFound
from services.reports import funnel, sales
from services.reports.models import (
    DealMove,
    DealStageCounts,
    FunnelOwnerTotals,
    FunnelTotals,
    PipelineFact,
    StageFact,
)
from services.reports.totals import add_many

FUNNEL_VIEW = "funnel"
KINDS = {
    "deal_created": "created",
    "deal_updated": "updated",
    "deal_stage_changed": "moved",
    "deal_won": "won",
    "deal_lost": "lost",
    "deal_reopened": "reopened",
}
NO_OWNER = ""
FUNNEL_KEY = ("pipeline_id", "stage_id", "owner", "cohort_day")
# Held shared by every batch of deal or pipeline events, alone by a rebuild counting every
# deal again (deal_counts.count_every_deal).
DEALS_LOCK = "reports:deals"
OWNER_KEY = FUNNEL_KEY[:3]


def deal_locks(envelopes):
    """The locks of deal events, {key: shared}: events of one deal applied by two instances
    at once take turns; events of the deals' pipelines wait for them (and they for it): a
    deal counted while its stages change would be counted against stages that no longer
    are."""
    locks = {f"reports:deal:{envelope['data']['deal_id']}": False for envelope in envelopes}
    locks[DEALS_LOCK] = True
    for envelope in envelopes:
        locks[pipeline_lock_key(envelope["data"]["deal"]["pipeline_id"])] = True
    return locks


def pipeline_locks(envelopes):
    """The locks of pipeline events: each pipeline's, alone (and DEALS_LOCK shared: a new
    stage order counts the pipeline's deals again)."""
    locks = {pipeline_lock_key(envelope["data"]["pipeline_id"]): False for envelope in envelopes}
    locks[DEALS_LOCK] = True
    return locks


def pipeline_lock_key(pipeline_id):
    return f"reports:pipeline:{pipeline_id}"


def apply_pipeline_event(session, envelope):
    """pipeline_created / pipeline_changed: the stages and their order, if newer. The
    caller holds the pipeline's lock alone (pipeline_locks)."""
    data = envelope["data"]
    pipeline_id = data["pipeline_id"]
    fact = session.get(PipelineFact, pipeline_id)
    if fact is not None and fact.sequence >= envelope["sequence"]:
        return
    if fact is None:
        fact = PipelineFact(pipeline_id=pipeline_id)
        session.add(fact)
    fact.sequence = envelope["sequence"]
    fact.name = data["name"]
    fact.is_default = data["is_default"]
    before = _order(session, pipeline_id)
    listed = {stage["stage_id"]: stage for stage in data["stages"]}
    known = {
        stage.stage_id: stage
        for stage in session.scalars(select(StageFact).where(StageFact.pipeline_id == pipeline_id))
    }
    for stage_id, stage in known.items():
        if stage_id not in listed:
            stage.position = None
    for stage_id, shown in listed.items():
        stage = known.get(stage_id)
        if stage is None:
            stage = StageFact(stage_id=stage_id, pipeline_id=pipeline_id)
            session.add(stage)
        stage.name = shown["name"]
        stage.kind = shown["kind"]
        stage.position = shown["position"]
        if shown["probability"] is not None:
            stage.probability_bp = sales.to_basis_points(shown["probability"])
    session.flush()
    if _order(session, pipeline_id) != before:
        # "Converted" depends on the stage order: every deal of the pipeline counts again.
        deal_ids = session.scalars(
            select(DealStageCounts.deal_id)
            .where(DealStageCounts.pipeline_id == pipeline_id)
            .distinct()
        ).all()
        recount_deals(session, deal_ids)


def _order(session, pipeline_id):
    return [
        (stage.stage_id, stage.kind, stage.position) for stage in stages_of(session, pipeline_id)
    ]


def apply_deal_moves(session, envelopes):
    """Deal events: keep each as a move (once) and count its deal again."""
    recount_deals(session, store_deal_moves(session, envelopes))


def store_deal_moves(session, envelopes):
    """Deal events: keep each as a move (once), their deals not counted again; answers the
    ids of their deals."""
    moves = {}
    for envelope in envelopes:
        data = envelope["data"]
        deal = data["deal"]
        moves.setdefault(
            (data["deal_id"], envelope["sequence"]),
            {
                "deal_id": data["deal_id"],
                "sequence": envelope["sequence"],
                "pipeline_id": deal["pipeline_id"],
                "at": envelope["occurred_at"],
                "kind": KINDS[envelope["event_type"]],
                "from_stage_id": data.get("from_stage_id"),
                "to_stage_id": data.get("to_stage_id") or _entered(envelope),
                "dwell_seconds": data.get("dwell_seconds"),
                "stage_id": deal["stage_id"],
                "status": deal["status"],
                "owner": deal["owner"],
                "created_at": deal["created_at"],
                "customer_id": deal["customer_id"],
                "amount_cents": sales.to_cents(deal["amount"]),
            },
        )
    insert_new(session, DealMove, ("deal_id", "sequence"), [moves[key] for key in sorted(moves)])
    return {deal_id for deal_id, _ in moves}


def _entered(envelope):
    """The stage a deal event put the deal in, when the event names no to_stage_id."""
    if envelope["event_type"] in ("deal_created", "deal_won", "deal_lost"):
        return envelope["data"]["deal"]["stage_id"]
    return None


MOVE_COLUMNS = [column for column in DealMove.__table__.columns]
# Deals counted again per statement, when a pipeline's new order recounts them all.
RECOUNT_CHUNK = 1000


def recount_deals(session, deal_ids):
    """Count each deal's contribution to the funnel again from all its moves, and move the
    totals by the difference: a few statements for all the deals."""
    deal_ids = sorted(set(deal_ids))
    for first in range(0, len(deal_ids), RECOUNT_CHUNK):
        _recount(session, deal_ids[first : first + RECOUNT_CHUNK])


def _recount(session, deal_ids):
    moves = defaultdict(list)
    for row in session.execute(
        select(*MOVE_COLUMNS)
        .where(DealMove.deal_id.in_(deal_ids))
        .order_by(DealMove.deal_id, DealMove.sequence)
    ):
        moves[row.deal_id].append(row)
    if not moves:
        return
    counted = sorted(moves)
    # {(deal_id, stage_id): (pipeline_id, owner, cohort_day, *counts)}, as stored and as now.
    before = {
        (deal_id, stage_id): tuple(values)
        for deal_id, stage_id, *values in session.execute(
            select(*STAGE_COUNTS_KEY, *STAGE_COUNTS_VALUES).where(
                DealStageCounts.deal_id.in_(counted)
            )
        )
    }
    deltas = defaultdict(lambda: dict.fromkeys(funnel.COUNTS, 0))
    for (_, stage_id), (pipeline_id, owner, cohort, *counts) in before.items():
        delta = deltas[(pipeline_id, stage_id, owner, cohort)]
        for name, value in zip(funnel.COUNTS, counts, strict=True):
            delta[name] -= value
    pipelines, after = {}, {}
    for deal_id in counted:
        last = moves[deal_id][-1]
        if last.pipeline_id not in pipelines:
            pipelines[last.pipeline_id] = pipeline_of(session, last.pipeline_id)
        counts = funnel.deal_counts(map(as_move, moves[deal_id]), pipelines[last.pipeline_id])
        owner, cohort = last.owner or NO_OWNER, last.created_at.date().isoformat()
        for stage_id, stage_counts in counts.items():
            values = stage_counts.as_dict()
            delta = deltas[(last.pipeline_id, stage_id, owner, cohort)]
            for name, value in values.items():
                delta[name] += value
            after[(deal_id, stage_id)] = (last.pipeline_id, owner, cohort, *values.values())
    add_many(
        session,
        FunnelTotals,
        FUNNEL_KEY,
        {key: delta for key, delta in deltas.items() if any(delta.values())},
    )
    add_many(session, FunnelOwnerTotals, OWNER_KEY, over_days(deltas))
    # Only the rows that changed: a deal's new event moves one or two of its stages, and
    # rewriting all of them was the largest share of a backlog's writes.
    gone = sorted(key for key in before if key not in after)
    if gone:
        session.execute(
            delete(DealStageCounts).where(
                tuple_(DealStageCounts.deal_id, DealStageCounts.stage_id).in_(gone)
            )
        )
    replace_rows(
        session,
        DealStageCounts,
        ("deal_id", "stage_id"),
        [
            {
                "deal_id": deal_id,
                "stage_id": stage_id,
                **dict(zip(STAGE_COUNTS_COLUMNS, values, strict=True)),
            }
            for (deal_id, stage_id), values in sorted(after.items())
            if before.get((deal_id, stage_id)) != values
        ],
    )


STAGE_COUNTS_COLUMNS = ("pipeline_id", "owner", "cohort_day", *funnel.COUNTS)
STAGE_COUNTS_KEY = (DealStageCounts.deal_id, DealStageCounts.stage_id)
STAGE_COUNTS_VALUES = tuple(DealStageCounts.__table__.c[name] for name in STAGE_COUNTS_COLUMNS)


def over_days(deltas):
    """Deltas of `FunnelTotals` rows summed over their days: those of `FunnelOwnerTotals`."""
    summed = defaultdict(lambda: dict.fromkeys(funnel.COUNTS, 0))
    for key, delta in deltas.items():
        for name, value in delta.items():
            summed[key[: len(OWNER_KEY)]][name] += value
    return {key: delta for key, delta in summed.items() if any(delta.values())}


def as_move(row):
    return funnel.Move(
        sequence=row.sequence,
        kind=row.kind,
        from_stage_id=row.from_stage_id,
        to_stage_id=row.to_stage_id,
        dwell_seconds=row.dwell_seconds,
        stage_id=row.stage_id,
        status=row.status,
    )


def stages_of(session, pipeline_id):
    return [
        funnel.Stage(stage.stage_id, stage.name, stage.kind, stage.position)
        for stage in session.scalars(
            select(StageFact)
            .where(StageFact.pipeline_id == pipeline_id, StageFact.position.is_not(None))
            .order_by(StageFact.position)
        )
    ]


def pipeline_of(session, pipeline_id):
    return funnel.Pipeline({stage.stage_id: stage for stage in stages_of(session, pipeline_id)})


def chosen_pipeline(session, pipeline_id=None):
    """The pipeline asked for, or the default one; NotFound if reports never heard of it."""
    if pipeline_id:
        fact = session.get(PipelineFact, str(pipeline_id))
    else:
        fact = session.scalars(
            select(PipelineFact).where(PipelineFact.is_default.is_(True))
        ).first()
    if fact is None:
        raise NotFound(
            f"No pipeline {pipeline_id} in the reports yet."
            if pipeline_id
            else "No default pipeline in the reports yet.",
            details={"pipeline_id": str(pipeline_id) if pipeline_id else None},
        )
    return fact


def funnel_report(session, pipeline_id=None, owner=None, days=(None, None)):
    """The live funnel, from the totals; `days` (first, last) filters by day deals were created.

    Without days it sums the totals per owner (a few rows per stage) rather than those per
    day (a row per stage, owner and day: tens of thousands at size).
    """
    pipeline = chosen_pipeline(session, pipeline_id)
    first, last = days
    table = FunnelTotals if first or last else FunnelOwnerTotals
    query = select(
        table.stage_id, *(func.sum(getattr(table, name)) for name in funnel.COUNTS)
    ).where(table.pipeline_id == pipeline.pipeline_id)
    if owner is not None:
        query = query.where(table.owner == owner)
    if first:
        query = query.where(FunnelTotals.cohort_day >= first)
    if last:
        query = query.where(FunnelTotals.cohort_day <= last)
    totals = {
        stage_id: dict(zip(funnel.COUNTS, (int(value or 0) for value in sums), strict=True))
        for stage_id, *sums in session.execute(query.group_by(table.stage_id))
    }
    return {
        "pipeline_id": pipeline.pipeline_id,
        "pipeline": pipeline.name,
        **funnel.report(stages_of(session, pipeline.pipeline_id), totals),
    }


def funnel_as_of(session, as_of, pipeline_id=None, owner=None, days=(None, None)):
    """The funnel as it stood at `as_of`: only the moves up to then count."""
    pipeline = chosen_pipeline(session, pipeline_id)
    stages = pipeline_of(session, pipeline.pipeline_id)
    rows = session.scalars(
        select(DealMove)
        .where(DealMove.pipeline_id == pipeline.pipeline_id, DealMove.at <= as_of)
        .order_by(DealMove.deal_id, DealMove.sequence)
    ).all()
    by_deal = defaultdict(list)
    for row in rows:
        by_deal[row.deal_id].append(row)
    first, last = days
    totals = defaultdict(lambda: dict.fromkeys(funnel.COUNTS, 0))
    for moves in by_deal.values():
        latest = moves[-1]
        cohort = latest.created_at.date().isoformat()
        if owner is not None and (latest.owner or NO_OWNER) != owner:
            continue
        if (first and cohort < first) or (last and cohort > last):
            continue
        for stage_id, counts in funnel.deal_counts(map(as_move, moves), stages).items():
            for name, value in counts.as_dict().items():
                totals[stage_id][name] += value
    return {
        "pipeline_id": pipeline.pipeline_id,
        "pipeline": pipeline.name,
        **funnel.report(stages_of(session, pipeline.pipeline_id), totals),
    }
