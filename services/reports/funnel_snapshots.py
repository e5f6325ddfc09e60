"""The funnel as of a past moment, from kept snapshots: the same numbers as from every move.

The funnel as it stood at T counts each deal by its moves up to T
(funnel_view.funnel_as_of). Counting all 200,000 deals' moves takes
seconds, but between two moments only the deals that moved in between
count differently. So the funnel of each pipeline is kept, per stage,
owner and day created, as it stood at some UTC midnights (FunnelSnapshot):
an answer as of T starts from the snapshot of T's midnight (today's, for a
moment later than that) and takes back, for each deal that moved after it
until T, what it counted then and adds what it counts at T.

A snapshot is made when first needed, from the nearest one kept (earlier or
later: the same shift, either way) or, for the first, from every move; the
timer keeps today's ready, and snapshots unused for KEEP_UNUSED go. Each is
counted with the pipeline's stage order, as the slow path is, and one made
with another order is made again. A move that arrives late, at or before a
snapshot's moment, removes that snapshot (forget_from, in the move's
transaction); making one holds the pipeline's lock that deal events share,
so no move can slip in between its reading and its commit. A rebuild empties
the snapshots with the views.
"""

import csv
import io
import json
from collections import defaultdict
from datetime import UTC, datetime, time, timedelta
from itertools import groupby

import psycopg2.extensions
from sqlalchemy import delete, func, select

from crm_common.db import bulk_insert, is_postgres, lock_for
from services.reports import funnel, funnel_view
from services.reports.models import DealMove, FunnelSnapshot, FunnelSnapshotTotals, PipelineFact

KEEP_UNUSED = timedelta(days=7)
# used_at is written at most this often, so that reads seldom write.
USE_RESOLUTION = timedelta(hours=1)
KEY = ("stage_id", "owner", "cohort_day")
MOVE_COLUMNS = (
    DealMove.deal_id,
    DealMove.sequence,
    DealMove.at,
    DealMove.kind,
    DealMove.from_stage_id,
    DealMove.to_stage_id,
    DealMove.dwell_seconds,
    DealMove.stage_id,
    DealMove.status,
    DealMove.owner,
    DealMove.created_at,
)


def midnight(moment):
    """The UTC midnight that begins the day of `moment`."""
    return datetime.combine(moment.astimezone(UTC).date(), time(), UTC)


def zero_totals():
    return defaultdict(lambda: dict.fromkeys(funnel.COUNTS, 0))


def funnel_as_of(session, as_of, now, pipeline_id=None, owner=None, days=(None, None)):
    """The funnel as it stood at `as_of`; the same answer as funnel_view.funnel_as_of."""
    fact = funnel_view.chosen_pipeline(session, pipeline_id)
    stages = funnel_view.stages_of(session, fact.pipeline_id)
    pipeline = funnel.Pipeline({stage.stage_id: stage for stage in stages})
    moment = min(midnight(as_of), midnight(now))
    ensure(session, fact.pipeline_id, pipeline, moment, now)
    by_stage = _snapshot_sums(session, fact.pipeline_id, moment, owner, days)
    moved = shift(session, fact.pipeline_id, pipeline, zero_totals(), moment, as_of)
    for (stage_id, deal_owner, cohort), counts in moved.items():
        if _kept(deal_owner, cohort, owner, days):
            for name, value in counts.items():
                by_stage[stage_id][name] += value
    return {
        "pipeline_id": fact.pipeline_id,
        "pipeline": fact.name,
        **funnel.report(stages, by_stage),
    }


def _kept(deal_owner, cohort, owner, days):
    """Whether a deal counted under (deal_owner, cohort) passes the filters (as the slow path)."""
    first, last = days
    return (
        (owner is None or deal_owner == owner)
        and not (first and cohort < first)
        and not (last and cohort > last)
    )


def _snapshot_sums(session, pipeline_id, moment, owner, days):
    """{stage_id: counts} of the snapshot, filtered, summed in the database."""
    query = select(
        FunnelSnapshotTotals.stage_id,
        *(func.sum(getattr(FunnelSnapshotTotals, name)) for name in funnel.COUNTS),
    ).where(FunnelSnapshotTotals.pipeline_id == pipeline_id, FunnelSnapshotTotals.moment == moment)
    first, last = days
    if owner is not None:
        query = query.where(FunnelSnapshotTotals.owner == owner)
    if first:
        query = query.where(FunnelSnapshotTotals.cohort_day >= first)
    if last:
        query = query.where(FunnelSnapshotTotals.cohort_day <= last)
    sums = zero_totals()
    for stage_id, *values in session.execute(query.group_by(FunnelSnapshotTotals.stage_id)):
        sums[stage_id] = dict(
            zip(funnel.COUNTS, (int(value or 0) for value in values), strict=True)
        )
    return sums


def stage_order(pipeline):
    return json.dumps(
        sorted([stage.stage_id, stage.kind, stage.position] for stage in pipeline.stages.values())
    )


def ensure(session, pipeline_id, pipeline, moment, now):
    """Make sure the snapshot of `pipeline_id` at `moment` is kept, with today's stage order."""
    order = stage_order(pipeline)
    kept = session.get(FunnelSnapshot, (pipeline_id, moment))
    if kept is not None and kept.stage_order == order:
        if now - kept.used_at >= USE_RESOLUTION:
            kept.used_at = now
            session.commit()
        return
    # Deal events of the pipeline hold this lock shared: none is half applied meanwhile.
    lock_for(session, funnel_view.pipeline_lock_key(pipeline_id))
    kept = session.get(FunnelSnapshot, (pipeline_id, moment), populate_existing=True)
    if kept is not None and kept.stage_order == order:
        session.commit()
        return  # another instance made it while this one waited
    base = _nearest(session, pipeline_id, order, moment)
    if base is None:
        totals = totals_from_moves(session, pipeline_id, pipeline, moment)
    else:
        totals = shift(
            session, pipeline_id, pipeline, _snapshot_rows(session, base), base.moment, moment
        )
    _drop(session, FunnelSnapshot.pipeline_id == pipeline_id, FunnelSnapshot.moment == moment)
    session.add(
        FunnelSnapshot(pipeline_id=pipeline_id, moment=moment, stage_order=order, used_at=now)
    )
    session.flush()
    _write_rows(
        session,
        [
            (pipeline_id, moment, *key, *(counts[name] for name in funnel.COUNTS))
            for key, counts in totals.items()
            if any(counts.values())
        ],
    )
    session.commit()


ROW_COLUMNS = ("pipeline_id", "moment", *KEY, *funnel.COUNTS)


def _write_rows(session, rows):
    """A snapshot's rows (tens of thousands at size): COPY on PostgreSQL, where batched
    inserts took seconds."""
    if not is_postgres(session.get_bind()):
        bulk_insert(session, FunnelSnapshotTotals.__table__, ROW_COLUMNS, rows)
        return
    data = io.StringIO()
    writer = csv.writer(data)
    for row in rows:
        writer.writerow([row[0], row[1].isoformat(), *row[2:]])
    data.seek(0)
    cursor = session.connection().connection.dbapi_connection.cursor()
    # COPY refuses the cooperative wait callback (psycogreen): it blocks the process for
    # its fraction of a second, and nothing else runs on this hub meanwhile to need it.
    cooperative = psycopg2.extensions.get_wait_callback()
    psycopg2.extensions.set_wait_callback(None)
    try:
        cursor.copy_expert(
            f"COPY {FunnelSnapshotTotals.__tablename__} ({', '.join(ROW_COLUMNS)}) "
            # An empty owner (none) is an empty text, not a null.
            "FROM STDIN WITH (FORMAT csv, FORCE_NOT_NULL (owner))",
            data,
        )
    finally:
        psycopg2.extensions.set_wait_callback(cooperative)
        cursor.close()


def _nearest(session, pipeline_id, order, moment):
    kept = session.scalars(
        select(FunnelSnapshot).where(
            FunnelSnapshot.pipeline_id == pipeline_id, FunnelSnapshot.stage_order == order
        )
    ).all()
    return min(kept, key=lambda snapshot: abs(snapshot.moment - moment), default=None)


def _snapshot_rows(session, snapshot):
    totals = zero_totals()
    for row in session.execute(
        select(*(getattr(FunnelSnapshotTotals, name) for name in KEY + funnel.COUNTS)).where(
            FunnelSnapshotTotals.pipeline_id == snapshot.pipeline_id,
            FunnelSnapshotTotals.moment == snapshot.moment,
        )
    ):
        totals[tuple(row[: len(KEY)])] = dict(zip(funnel.COUNTS, row[len(KEY) :], strict=True))
    return totals


def _moves_by_deal(session, pipeline_id, *conditions):
    """Each deal's moves meeting `conditions`, in sequence order: {deal_id: [row, ...]}."""
    rows = session.execute(
        select(*MOVE_COLUMNS)
        .where(DealMove.pipeline_id == pipeline_id, *conditions)
        .order_by(DealMove.deal_id, DealMove.sequence)
    )
    return {deal_id: list(moves) for deal_id, moves in groupby(rows, key=lambda row: row.deal_id)}


def _add(totals, moves, pipeline, sign):
    """Add (sign 1) or take back (-1) what a deal with these moves (in sequence order) counts."""
    if not moves:
        return
    latest = moves[-1]
    owner, cohort = latest.owner or funnel_view.NO_OWNER, latest.created_at.date().isoformat()
    for stage_id, counts in funnel.deal_counts(map(funnel_view.as_move, moves), pipeline).items():
        row = totals[(stage_id, owner, cohort)]
        for name, value in counts.as_dict().items():
            row[name] += sign * value


def totals_from_moves(session, pipeline_id, pipeline, moment):
    """Every deal counted by its moves up to `moment`: {(stage_id, owner, cohort_day): counts}."""
    totals = zero_totals()
    for moves in _moves_by_deal(session, pipeline_id, DealMove.at <= moment).values():
        _add(totals, moves, pipeline, 1)
    return totals


def shift(session, pipeline_id, pipeline, totals, start, end):
    """`totals` as of `start` moved to `end` (earlier or later): only the deals with a
    move between the two count differently."""
    low, high = min(start, end), max(start, end)
    if low == high:
        return totals
    moved = (
        select(DealMove.deal_id)
        .where(DealMove.pipeline_id == pipeline_id, DealMove.at > low, DealMove.at <= high)
        .distinct()
    )
    for moves in _moves_by_deal(
        session, pipeline_id, DealMove.deal_id.in_(moved), DealMove.at <= high
    ).values():
        _add(totals, [move for move in moves if move.at <= start], pipeline, -1)
        _add(totals, [move for move in moves if move.at <= end], pipeline, 1)
    return totals


def forget_from(session, pipeline_id, at):
    """A move at `at` applied now: the snapshots at or after `at` did not count it."""
    missed = session.scalars(
        select(FunnelSnapshot.moment).where(
            FunnelSnapshot.pipeline_id == pipeline_id, FunnelSnapshot.moment >= at
        )
    ).all()
    if missed:
        _drop(session, FunnelSnapshot.pipeline_id == pipeline_id, FunnelSnapshot.moment >= at)


def forget_moves(session, envelopes):
    """Deal events applied now: each pipeline forgets from its earliest move among them."""
    earliest = {}
    for envelope in envelopes:
        pipeline_id, at = envelope["data"]["deal"]["pipeline_id"], envelope["occurred_at"]
        earliest[pipeline_id] = min(earliest.get(pipeline_id, at), at)
    for pipeline_id, at in earliest.items():
        forget_from(session, pipeline_id, at)


def _drop(session, *conditions):
    """Remove the snapshots meeting `conditions` (on FunnelSnapshot's columns) and their rows."""
    doomed = session.execute(
        select(FunnelSnapshot.pipeline_id, FunnelSnapshot.moment).where(*conditions)
    ).all()
    for pipeline_id, moment in doomed:
        session.execute(
            delete(FunnelSnapshotTotals).where(
                FunnelSnapshotTotals.pipeline_id == pipeline_id,
                FunnelSnapshotTotals.moment == moment,
            )
        )
    session.execute(delete(FunnelSnapshot).where(*conditions))


def keep_today(session, now):
    """Today's snapshot of every pipeline made (the timer's work), unused ones dropped."""
    today = midnight(now)
    _drop(session, FunnelSnapshot.used_at < now - KEEP_UNUSED, FunnelSnapshot.moment != today)
    session.commit()
    made = 0
    for pipeline_id in session.scalars(select(PipelineFact.pipeline_id)).all():
        if session.get(FunnelSnapshot, (pipeline_id, today)) is None:
            made += 1
        ensure(session, pipeline_id, funnel_view.pipeline_of(session, pipeline_id), today, now)
    return made
