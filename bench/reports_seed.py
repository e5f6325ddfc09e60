"""A reports database at size, built from generated events in minutes rather than hours.

Applying events one by one with the reports service's effect functions runs
at a few hundred events per second even without the broker (each deal event
is some fifteen statements, and SQLAlchemy compiles the totals' upserts anew
every time). 1.4 million events would take hours, so the seeder gets the
same rows another way:

- customer, ticket and satisfaction events go through the service's own
  effect functions of one event on its batch's facts, on a `MemorySession`
  that keeps the rows by primary key instead of a database; an
  interaction becomes the row its effect inserts (in bulk, so not through
  the MemorySession);
- a deal's events are turned into its moves, its funnel counts, its latest
  state and its sales totals with the service's own rules (funnel.deal_counts,
  sales.moves), as funnel_view.apply_deal_moves and views.apply_deal_events do;
- the rows go in with COPY.

bench/reports_dataset.py checks the seeder against the effect functions on a
sample each time it seeds.
"""

import importlib
import io
import json
import time
from collections import defaultdict
from types import SimpleNamespace

from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session

from crm_common.envelope import load_envelope, utcnow
from crm_common.inbox import apply_once
from services.reports import funnel, funnel_view, sales, segment_view, ticket_view, views
from services.reports import service as reports_service
from services.reports.models import (
    AppliedEvent,
    CustomerFact,
    DealFact,
    DealMove,
    DealStageCounts,
    FunnelOwnerTotals,
    FunnelTotals,
    InteractionFact,
    ProducerCursor,
    SatisfactionFact,
    TicketFact,
    ViewState,
)
from services.reports.service import APPLIERS

SCHEMAS = {key: (effect, schema()) for key, (effect, schema) in APPLIERS.items()}
# The service's effects made of one event's effect on its batch's facts:
# (their model, the effect of one event, the view they move).
FACT_EFFECTS = {
    reports_service.apply_customer: (
        CustomerFact,
        views.apply_customer_event,
        views.CUSTOMERS_VIEW,
    ),
    reports_service.apply_ticket: (
        TicketFact,
        ticket_view.apply_ticket_event,
        ticket_view.SERVICE_VIEW,
    ),
    reports_service.apply_satisfaction: (
        SatisfactionFact,
        ticket_view.apply_satisfaction_recorded,
        ticket_view.SATISFACTION_VIEW,
    ),
}
STATE = ("view", "as_of", "events_applied")
COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def loaded(body):
    """(effect, envelope loaded as the service's inbox loads it) of one event body."""
    effect, schema = SCHEMAS[(body["producer"], body["event_type"])]
    return effect, load_envelope(body, schema)


class MemorySession:
    """Enough of a Session for effect functions that get and add rows by primary key.

    Its bind is no PostgreSQL, so `lock_for` takes no lock. Anything else a
    Session does raises AttributeError: an effect function that starts to
    query would stop the seeding rather than be applied wrongly.
    """

    bind = SimpleNamespace(dialect=SimpleNamespace(name="memory"))

    def __init__(self):
        self.rows = defaultdict(dict)  # model -> {primary key tuple: object}
        self.keys = {}

    def get_bind(self):
        return self.bind

    def get(self, model, key, with_for_update=None):
        return self.rows[model].get(key if isinstance(key, tuple) else (key,))

    def add(self, row):
        model = type(row)
        if model not in self.keys:
            self.keys[model] = [column.key for column in inspect(model).primary_key]
        self.rows[model][tuple(getattr(row, name) for name in self.keys[model])] = row

    def add_all(self, rows):
        for row in rows:
            self.add(row)

    def flush(self):
        pass


class MemoryFacts:
    """What a FactBatch is to the effect of one event, over the facts of `model` that a
    MemorySession keeps."""

    def __init__(self, session, model):
        self.session = session
        self.model = model

    def get(self, key, make):
        fact = self.session.get(self.model, key)
        if fact is None:
            fact = make()
            self.session.add(fact)
        return fact


class Seeder:
    """Applies events into memory (see the module docstring); `write` puts them in a database."""

    def __init__(self, pipeline):
        self.session = MemorySession()
        self.pipeline = pipeline  # funnel.Pipeline of the deals' pipeline
        self.totals = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
        self.applied = []
        self.applied_at = utcnow()
        self.events = 0

    def apply(self, body):
        """One event that is not a deal's, through the effect of one event on its batch's
        facts (an interaction's inserts in bulk: its row is the one
        segment_view.apply_interactions_logged writes)."""
        effect, envelope = loaded(body)
        if envelope["event_type"] == "interaction_logged":
            data = envelope["data"]
            self.session.add(
                InteractionFact(
                    interaction_id=data["interaction_id"],
                    customer_id=data["customer_id"],
                    occurred_at=data["occurred_at"],
                    channel=data["channel"],
                )
            )
            views.touch(self.session, "interactions", envelope["occurred_at"])
        else:
            model, apply_event, view = FACT_EFFECTS[effect]
            apply_event(MemoryFacts(self.session, model), envelope)
            views.touch(self.session, view, envelope["occurred_at"])
        self.record(envelope)

    def apply_deal(self, bodies):
        """All the events of one deal, in their order."""
        envelopes = sorted((loaded(body)[1] for body in bodies), key=lambda env: env["sequence"])
        moves, old = [], None
        for envelope in envelopes:
            moves.append(deal_move(envelope))
            fact = deal_fact(envelope)
            for view, key, deltas in sales.moves(old, fact):
                self.add_to(views.SALES_TABLES[view], key, deltas)
            old = fact
            self.record(envelope)
            for view in (views.SALES_VIEW, funnel_view.FUNNEL_VIEW):
                views.touch(self.session, view, envelope["occurred_at"])
        self.session.add(deal_fact_row(envelopes[-1]))
        last = moves[-1]
        owner, cohort = last.owner or funnel_view.NO_OWNER, last.created_at.date().isoformat()
        for move in moves:
            self.session.add(move)
        counts = funnel.deal_counts(map(funnel_view.as_move, moves), self.pipeline)
        for stage_id, stage_counts in counts.items():
            values = stage_counts.as_dict()
            self.session.add(
                DealStageCounts(
                    deal_id=last.deal_id,
                    stage_id=stage_id,
                    pipeline_id=last.pipeline_id,
                    owner=owner,
                    cohort_day=cohort,
                    **values,
                )
            )
            self.add_to(FunnelTotals, (last.pipeline_id, stage_id, owner, cohort), values)
            self.add_to(FunnelOwnerTotals, (last.pipeline_id, stage_id, owner), values)

    def add_to(self, model, key, deltas):
        row = self.totals[model][key]
        for column, delta in deltas.items():
            row[column] += delta

    def record(self, envelope):
        self.events += 1
        self.applied.append(
            (
                str(envelope["event_id"]),
                envelope["event_type"],
                envelope["producer"],
                envelope["aggregate_id"],
                envelope["sequence"],
                self.applied_at,
            )
        )

    def write(self, session):
        """COPY the rows applied so far into the session's database, then forget them.
        Totals and the views' states grow across batches: `finish` writes them."""
        states = self.session.rows.pop(ViewState, {})
        for model, rows in self.session.rows.items():
            copy_rows(session, model, [row_values(model, row) for row in rows.values()])
        copy_rows(session, AppliedEvent, self.applied)
        self.session = MemorySession()
        self.session.add_all(states.values())
        self.applied = []

    def finish(self, session):
        """Write what is left, and the views' states beside those already in the database."""
        self.write(session)
        key_columns = {
            FunnelTotals: funnel_view.FUNNEL_KEY,
            FunnelOwnerTotals: funnel_view.OWNER_KEY,
            **{model: views.TOTALS_KEY for model in views.SALES_TABLES.values()},
        }
        for model, totals in self.totals.items():
            columns = [column.name for column in model.__table__.columns]
            copy_rows(
                session,
                model,
                [
                    tuple(
                        dict(zip(key_columns[model], key, strict=True)).get(name, sums.get(name))
                        for name in columns
                    )
                    for key, sums in totals.items()
                ],
            )
        for state in self.session.rows.pop(ViewState, {}).values():
            stored = session.get(ViewState, state.view)
            if stored is None:
                session.add(ViewState(**{name: getattr(state, name) for name in STATE}))
            else:
                stored.events_applied += state.events_applied
                stored.as_of = max(stored.as_of, state.as_of)
        session.commit()


def deal_move(envelope):
    """The DealMove funnel_view.apply_deal_moves stores for a deal event."""
    data = envelope["data"]
    deal = data["deal"]
    return DealMove(
        deal_id=data["deal_id"],
        sequence=envelope["sequence"],
        pipeline_id=deal["pipeline_id"],
        at=envelope["occurred_at"],
        kind=funnel_view.KINDS[envelope["event_type"]],
        from_stage_id=data.get("from_stage_id"),
        to_stage_id=data.get("to_stage_id") or funnel_view._entered(envelope),
        dwell_seconds=data.get("dwell_seconds"),
        stage_id=deal["stage_id"],
        status=deal["status"],
        owner=deal["owner"],
        created_at=deal["created_at"],
        customer_id=deal["customer_id"],
        amount_cents=sales.to_cents(deal["amount"]),
    )


def deal_fact_row(envelope):
    """The DealFact views.apply_deal_event keeps: the deal as its newest event tells it."""
    deal = envelope["data"]["deal"]
    return DealFact(
        deal_id=envelope["data"]["deal_id"],
        sequence=envelope["sequence"],
        customer_id=deal["customer_id"],
        pipeline_id=deal["pipeline_id"],
        stage_id=deal["stage_id"],
        status=deal["status"],
        owner=deal["owner"],
        currency=deal["currency"],
        amount_cents=sales.to_cents(deal["amount"]),
        probability_bp=round(deal["probability"] * 10000),
        expected_close_date=deal["expected_close_date"],
        closed_at=deal["closed_at"],
    )


def deal_fact(envelope):
    return views.sales_state(deal_fact_row(envelope))


def row_values(model, row):
    """The row's column values in table order, with the defaults an INSERT would give."""
    values = []
    for column in model.__table__.columns:
        if column.key in row.__dict__:
            values.append(row.__dict__[column.key])
        elif column.default is not None and column.default.is_scalar:
            values.append(column.default.arg)
        else:
            values.append(None)
    return values


def copy_rows(session, model, rows, names=None):
    """COPY `rows` (tuples of the table's columns, or of `names`) into the model's table."""
    if not rows:
        return
    table = model.__table__
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join(map(copy_text, row)))
        buffer.write("\n")
    buffer.seek(0)
    columns = ", ".join(f'"{name}"' for name in names or [column.name for column in table.columns])
    cursor = session.connection().connection.dbapi_connection.cursor()
    cursor.copy_expert(f'COPY "{table.name}" ({columns}) FROM STDIN', buffer)


def copy_text(value):
    """`value` as COPY's text format writes it."""
    if value is None:
        return r"\N"
    if value is True or value is False:
        return "t" if value else "f"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value).translate(COPY_ESCAPES)


def apply_pipeline(session, body):
    """The pipeline_created event, as the service applies it; answers the funnel.Pipeline."""
    effect, envelope = loaded(body)
    apply_once(session, AppliedEvent, envelope, effect)
    return funnel_view.pipeline_of(session, envelope["data"]["pipeline_id"])


class EventLogs:
    """The producers' event logs (their outbox tables, in their own databases) holding the
    events the reports were seeded from, in the order they were applied, all published:
    what a rebuild replays through `events_since`."""

    COLUMNS = ("event_id", "event_type", "aggregate_id", "sequence", "occurred_at", "body")

    def __init__(self, engines):
        self.sessions = {producer: Session(engine) for producer, engine in engines.items()}
        self.models = {producer: outbox_table(producer) for producer in engines}
        self.pending = defaultdict(list)
        self.positions = defaultdict(int)

    def add(self, body):
        occurred_at = body["occurred_at"]
        self.positions[body["producer"]] += 1
        self.pending[body["producer"]].append(
            (
                body["event_id"],
                body["event_type"],
                body["aggregate_id"],
                body["sequence"],
                occurred_at,
                json.dumps(body, separators=(",", ":")),
                occurred_at,
                self.positions[body["producer"]],
            )
        )

    def write(self):
        for producer, rows in self.pending.items():
            session = self.sessions[producer]
            columns = (*self.COLUMNS, "published_at", "log_position")
            copy_rows(session, self.models[producer], rows, columns)
            session.commit()
        self.pending.clear()

    def close(self, reports_session):
        """Write what is left; the reports have read each log to its end (their
        producer_cursors), as a running system's catch-up would have."""
        self.write()
        for producer, session in self.sessions.items():
            end = session.scalar(select(func.max(self.models[producer].log_position)))
            reports_session.add(
                ProducerCursor(producer=producer, cursor=str(end or 0), updated_at=utcnow())
            )
            session.close()
        reports_session.commit()


def outbox_table(producer):
    """The producer's outbox model (its own Base), without importing its service."""
    module = importlib.import_module(f"services.{producer}.models")
    return module.OutboxEvent


def seed_events(engine, streams, progress=print, batch=20_000, logs=None):
    """Apply `streams` (History.streams) into the migrated, empty database at `engine`, and
    add each event to `logs` (EventLogs) if given; answers {kind: events} and {kind: seconds}."""
    counts, seconds = {}, {}
    record = logs.add if logs is not None else (lambda body: None)
    with Session(engine) as session:
        first_pipeline = next(iter(streams["pipeline"]))
        record(first_pipeline)
        pipeline = apply_pipeline(session, first_pipeline)
        seeder = Seeder(pipeline)
        for kind, stream in streams.items():
            if kind == "pipeline":
                continue
            started, first = time.perf_counter(), seeder.events
            for item in stream:
                bodies = item if isinstance(item, list) else [item]
                for body in bodies:
                    record(body)
                if kind == "deals":
                    seeder.apply_deal(bodies)
                else:
                    for body in bodies:
                        seeder.apply(body)
                if len(seeder.applied) >= batch:
                    seeder.write(session)
                    if logs is not None:
                        logs.write()
            seeder.write(session)
            if logs is not None:
                logs.write()
            session.commit()
            counts[kind] = seeder.events - first
            seconds[kind] = time.perf_counter() - started
            progress(f"  {counts[kind]:,} {kind} events in {seconds[kind]:.0f} s")
        seeder.finish(session)
    counts["pipeline"] = 1
    return counts, seconds


def assign_segments(engine, now):
    """Every customer's first segment, as the service's first recompute gives it (its
    segment_changed events are left out: nobody listens to the bench's database)."""
    started = time.perf_counter()
    with Session(engine) as session:
        segment_view.recompute(session, now)
        session.commit()
    return time.perf_counter() - started
