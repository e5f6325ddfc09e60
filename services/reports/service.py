"""The reports service: materialized views fed by other services' events."""

import logging
import time
from datetime import timedelta
from functools import partial

import eventlet
from marshmallow import ValidationError
from nameko.extensions import DependencyProvider
from nameko.rpc import RpcProxy
from nameko.timer import timer
from sqlalchemy.exc import SQLAlchemyError

from crm_common.asking import ask
from crm_common.db import Database
from crm_common.envelope import InvalidEvent, load_envelope, utcnow
from crm_common.errors import NotFound, ValidationFailed
from crm_common.handlers import event_batch_handler
from crm_common.inbox import RETRYABLE, Inbox, apply_many, batched
from crm_common.outbox import Outbox
from crm_common.rpc import rpc
from crm_common.service import EventConsumer, EventProducer, ServiceBase
from services.reports import (
    catchup,
    deal_counts,
    funnel_snapshots,
    funnel_view,
    lag,
    rebuild,
    sales,
    segment_view,
    ticket_view,
    views,
)
from services.reports.cache import ReportCache, ViewStates
from services.reports.events import CATALOG
from services.reports.models import AppliedEvent, DeadLetter, OutboxEvent
from services.reports.schemas import (
    CustomerCreatedData,
    CustomerMergedData,
    CustomerUpdatedData,
    DealEventData,
    FunnelQuery,
    InteractionLoggedData,
    PipelineEventData,
    SalesQuery,
    SatisfactionQuery,
    SatisfactionRecordedData,
    SegmentMembersQuery,
    SegmentsQuery,
    ServiceQuery,
    TicketEventData,
    TicketOpenedData,
    TicketResolvedData,
    TicketRespondedData,
    TicketSlaBreachedData,
)

log = logging.getLogger(__name__)


def touch_batch(session, names, envelopes):
    """Record the batch in each view it moved, once: as of its newest event."""
    views.touch_all(
        session, names, max(envelope["occurred_at"] for envelope in envelopes), len(envelopes)
    )


def moving(view, apply_events):
    """The effect of events that `apply_events(session, envelopes)` applies to one `view`,
    batched: the view is touched once per batch."""

    def apply_all(session, envelopes):
        apply_events(session, envelopes)
        touch_batch(session, (view,), envelopes)

    return batched(apply_all)


apply_customer = moving(views.CUSTOMERS_VIEW, views.apply_customer_events)
apply_interaction = moving("interactions", segment_view.apply_interactions_logged)
apply_ticket = moving(ticket_view.SERVICE_VIEW, ticket_view.apply_ticket_events)
apply_satisfaction = moving(ticket_view.SATISFACTION_VIEW, ticket_view.apply_satisfactions_recorded)


def deal_effect(keep_moves):
    """Deal events move the sales totals and the funnel; `keep_moves(session, envelopes)`
    stores their moves (and counts their deals, or leaves that to a rebuild's end). Their
    locks: funnel_view.deal_locks."""

    def apply_all(session, envelopes):
        views.apply_deal_events(session, envelopes)
        keep_moves(session, envelopes)
        funnel_snapshots.forget_moves(session, envelopes)
        touch_batch(session, (funnel_view.FUNNEL_VIEW, views.SALES_VIEW), envelopes)

    return apply_all


apply_deals = deal_effect(funnel_view.apply_deal_moves)
apply_deal = batched(apply_deals, locks=funnel_view.deal_locks)
# Deal events of a rebuild's page: their deals are counted once, all together, at the
# rebuild's end (deal_counts.count_every_deal).
replay_deals = deal_effect(funnel_view.store_deal_moves)
replay_deal = batched(replay_deals, locks=funnel_view.deal_locks)


def apply_pipelines(session, envelopes):
    """Pipeline events order the funnel's stages and weigh the forecast's open deals
    (their locks: pipeline_locks)."""
    for envelope in sorted(
        envelopes, key=lambda envelope: (envelope["aggregate_id"], envelope["sequence"])
    ):
        funnel_view.apply_pipeline_event(session, envelope)
        views.reweigh_open_deals(session, envelope["data"]["pipeline_id"])
    touch_batch(session, (funnel_view.FUNNEL_VIEW, views.SALES_VIEW), envelopes)


apply_pipeline = batched(apply_pipelines, locks=funnel_view.pipeline_locks)


# What reports do with each event they use, whether it arrives from the
# broker or from the producer's log: (effect on the views, schema of its data).
APPLIERS = {
    ("customers", "customer_created"): (apply_customer, CustomerCreatedData),
    ("customers", "customer_updated"): (apply_customer, CustomerUpdatedData),
    ("customers", "customer_merged"): (apply_customer, CustomerMergedData),
    **{
        ("pipeline", event_type): (apply_deal, DealEventData)
        for event_type in (
            "deal_created",
            "deal_updated",
            "deal_stage_changed",
            "deal_won",
            "deal_lost",
            "deal_reopened",
        )
    },
    ("pipeline", "pipeline_created"): (apply_pipeline, PipelineEventData),
    ("pipeline", "pipeline_changed"): (apply_pipeline, PipelineEventData),
    ("interactions", "interaction_logged"): (apply_interaction, InteractionLoggedData),
    ("interactions", "ticket_opened"): (apply_ticket, TicketOpenedData),
    ("interactions", "ticket_assigned"): (apply_ticket, TicketEventData),
    ("interactions", "ticket_responded"): (apply_ticket, TicketRespondedData),
    ("interactions", "ticket_resolved"): (apply_ticket, TicketResolvedData),
    ("interactions", "ticket_closed"): (apply_ticket, TicketEventData),
    ("interactions", "ticket_reopened"): (apply_ticket, TicketEventData),
    ("interactions", "ticket_sla_breached"): (apply_ticket, TicketSlaBreachedData),
    ("interactions", "satisfaction_recorded"): (apply_satisfaction, SatisfactionRecordedData),
}
# What a rebuild's replay does instead with some events (the others apply as live).
REPLAYERS = {key: replay_deal for key, (effect, _) in APPLIERS.items() if effect is apply_deal}
# One instance of each data schema, loading every event of its kind: a new instance
# costs several times the load itself (its nested schemas are made on first use).
DATA_SCHEMAS = {key: schema() for key, (_, schema) in APPLIERS.items()}
PRODUCERS = sorted({producer for producer, _ in APPLIERS})
# A rebuild replays the pipelines first: deals replayed before their pipeline's stages
# are known would all be counted again when the stages arrive.
REPLAY_ORDER = sorted(PRODUCERS, key=lambda producer: producer != "pipeline")
# Events applied at once by concurrent handlers share a transaction of at most this many:
# a batch's statements are the same few whatever its size (applied in-process from the
# bench's backlog, batches of 1,000 went twice as fast as batches of 200).
INBOX_BATCH_SIZE = 1000
# How long a rebuild waits for a page of a producer's log, and for the database to come back.
LOG_PAGE_TIMEOUT_SECONDS = 30
RETRY_PAUSE_SECONDS = 1
# How often reports look whether today's funnel snapshots are there.
SNAPSHOT_SECONDS = 60


def applier_of(producer, body):
    """(effect, data schema) of the event `body` from `producer`, None for an event these
    views do not use, (None, None) for what is not an event at all (the inbox makes it a
    dead letter)."""
    event_type = body.get("event_type") if isinstance(body, dict) else None
    if not isinstance(event_type, str):
        return None, None
    key = (producer, event_type)
    return (APPLIERS[key][0], DATA_SCHEMAS[key]) if key in APPLIERS else None


def replayer_of(producer, envelope):
    """What a rebuild's replay does with the event `envelope` of `producer`."""
    key = (producer, envelope["event_type"])
    return REPLAYERS.get(key) or APPLIERS[key][0]


def loaded_events(producer, bodies):
    """(envelopes, invalid): the events of `bodies` these views use, loaded, and the bodies
    that are not valid events; those they do not use are left out."""
    envelopes, invalid = [], []
    for body in bodies:
        found = applier_of(producer, body)
        if found is None:
            continue
        try:
            if found[0] is None:
                raise InvalidEvent("not an event")
            envelopes.append(load_envelope(body, found[1]))
        except InvalidEvent:
            invalid.append(body)
    return envelopes, invalid


class CatchUpSchedule(DependencyProvider):
    def setup(self):
        self.schedule = catchup.Schedule(self.container.config["CRM_REPORTS_CATCH_UP_SECONDS"])

    def get_dependency(self, worker_ctx):
        return self.schedule


class SegmentSchedule(DependencyProvider):
    """When segments are due: their inputs moved on, or an hour passed (recency ages).

    A recompute reads every customer; at size it takes seconds. The next one
    waits at least RECOMPUTE_SHARE times as long as the last took, so that
    a steady flow of events leaves most of the time to applying them; and
    while a backlog drains (the inbox is behind) it waits for the backlog, for
    DEFER_AT_MOST at most: the backlog's next batches would move the customers
    again, and the recompute after it sees every move (each customer that moved
    is one segment_changed, against the segments as last emitted).
    """

    RECOMPUTE_SHARE = 10
    DEFER_AT_MOST = timedelta(minutes=5)

    def setup(self):
        self.interval = self.container.config["CRM_REPORTS_SEGMENT_SECONDS"]
        self.last_run = None
        self.last_inputs = None
        self.last_seconds = 0.0
        self.deferred_since = None

    def pause(self):
        return timedelta(seconds=max(self.interval, self.RECOMPUTE_SHARE * self.last_seconds))

    def waits(self, now, behind):
        """Whether a recompute waits at `now`: too soon after the last, or (`behind`) a
        backlog drains and has not held it back for DEFER_AT_MOST yet."""
        if self.last_run and now - self.last_run < self.pause():
            return True
        if not behind:
            self.deferred_since = None
            return False
        self.deferred_since = self.deferred_since or now
        return now - self.deferred_since < self.DEFER_AT_MOST

    def ran(self, now, inputs, seconds):
        self.last_run, self.last_inputs, self.last_seconds = now, inputs, seconds
        self.deferred_since = None

    def get_dependency(self, worker_ctx):
        return self


class ReportStates(DependencyProvider):
    """The views' states as report reads see them (services/reports/cache.py)."""

    def setup(self):
        self.states = ViewStates(rebuild.read_states)

    def get_dependency(self, worker_ctx):
        return self.states


class ReportsService(ServiceBase, EventProducer, EventConsumer):
    name = "reports"

    db = Database()
    outbox = Outbox(OutboxEvent, CATALOG)
    inbox = Inbox(AppliedEvent, DeadLetter, batch_size=INBOX_BATCH_SIZE)
    catch_up_schedule = CatchUpSchedule()
    segment_schedule = SegmentSchedule()
    cache = ReportCache()
    states = ReportStates()
    lag_metrics = lag.LagMetrics()
    customers = RpcProxy("customers")
    interactions = RpcProxy("interactions")
    pipeline = RpcProxy("pipeline")

    # Handler names are part of their queues' names: never rename one. Each takes the
    # events waiting in its queue together (a backlog in batches, crm_common.handlers).
    # An event that fails is a dead letter (retried, or kept for an admin);
    # only an unreachable database puts them back in the queue.
    @event_batch_handler("customers", "customer_created", requeue_on_error=True)
    def apply_customer_created(self, bodies):
        self.apply_bodies("customers", bodies)

    @event_batch_handler("customers", "customer_updated", requeue_on_error=True)
    def apply_customer_updated(self, bodies):
        self.apply_bodies("customers", bodies)

    @event_batch_handler("customers", "customer_merged", requeue_on_error=True)
    def apply_customer_merged(self, bodies):
        self.apply_bodies("customers", bodies)

    @event_batch_handler("pipeline", "pipeline_created", requeue_on_error=True)
    def apply_pipeline_created(self, bodies):
        self.apply_bodies("pipeline", bodies)

    @event_batch_handler("pipeline", "pipeline_changed", requeue_on_error=True)
    def apply_pipeline_changed(self, bodies):
        self.apply_bodies("pipeline", bodies)

    @event_batch_handler("pipeline", "deal_created", requeue_on_error=True)
    def apply_deal_created(self, bodies):
        self.apply_bodies("pipeline", bodies)

    @event_batch_handler("pipeline", "deal_updated", requeue_on_error=True)
    def apply_deal_updated(self, bodies):
        self.apply_bodies("pipeline", bodies)

    @event_batch_handler("pipeline", "deal_stage_changed", requeue_on_error=True)
    def apply_deal_stage_changed(self, bodies):
        self.apply_bodies("pipeline", bodies)

    @event_batch_handler("pipeline", "deal_won", requeue_on_error=True)
    def apply_deal_won(self, bodies):
        self.apply_bodies("pipeline", bodies)

    @event_batch_handler("pipeline", "deal_lost", requeue_on_error=True)
    def apply_deal_lost(self, bodies):
        self.apply_bodies("pipeline", bodies)

    @event_batch_handler("pipeline", "deal_reopened", requeue_on_error=True)
    def apply_deal_reopened(self, bodies):
        self.apply_bodies("pipeline", bodies)

    def health_details(self):
        """The outbox backlog, and how far the views are behind the events (`lag_seconds`)."""
        return {**super().health_details(), "lag_seconds": lag.lag_seconds(self.db, utcnow())}

    def apply(self, producer, body):
        """Apply one event `body` of `producer` once; whether it applied."""
        return self.apply_bodies(producer, [body])[0]

    def apply_bodies(self, producer, bodies):
        """Apply each of the event `bodies` of `producer` once, together; whether each applied.

        An event these views do not use is skipped; a body that is no event at all
        is a dead letter."""
        outcomes = [False] * len(bodies)
        places, items = [], []
        for place, body in enumerate(bodies):
            found = applier_of(producer, body)
            if found is None:
                continue  # an event these views do not use
            items.append((body, *found))
            places.append(place)
        for place, applied in zip(places, self.inbox.apply_all(items), strict=True):
            outcomes[place] = applied
        return outcomes

    @timer(interval=1)
    def catch_up(self):
        """Apply from the producers' logs what the broker did not deliver."""
        for producer in PRODUCERS:
            if not self.catch_up_schedule.due(producer):
                continue
            proxy = getattr(self, producer)
            finished = False
            try:
                finished = catchup.follow_log(
                    producer,
                    fetch=lambda cursor, proxy=proxy: proxy.events_since(cursor, catchup.PAGE_SIZE),
                    apply=lambda body, producer=producer: self.apply(producer, body),
                    session_factory=self.inbox.database.session,
                ).finished
            finally:  # a run that raised (its database away, say) did not finish either
                self.catch_up_schedule.ran(producer, finished)

    @event_batch_handler("interactions", "interaction_logged", requeue_on_error=True)
    def apply_interaction_logged(self, bodies):
        self.apply_bodies("interactions", bodies)

    @event_batch_handler("interactions", "ticket_opened", requeue_on_error=True)
    def apply_ticket_opened(self, bodies):
        self.apply_bodies("interactions", bodies)

    @event_batch_handler("interactions", "ticket_assigned", requeue_on_error=True)
    def apply_ticket_assigned(self, bodies):
        self.apply_bodies("interactions", bodies)

    @event_batch_handler("interactions", "ticket_responded", requeue_on_error=True)
    def apply_ticket_responded(self, bodies):
        self.apply_bodies("interactions", bodies)

    @event_batch_handler("interactions", "ticket_resolved", requeue_on_error=True)
    def apply_ticket_resolved(self, bodies):
        self.apply_bodies("interactions", bodies)

    @event_batch_handler("interactions", "ticket_closed", requeue_on_error=True)
    def apply_ticket_closed(self, bodies):
        self.apply_bodies("interactions", bodies)

    @event_batch_handler("interactions", "ticket_reopened", requeue_on_error=True)
    def apply_ticket_reopened(self, bodies):
        self.apply_bodies("interactions", bodies)

    @event_batch_handler("interactions", "ticket_sla_breached", requeue_on_error=True)
    def apply_ticket_sla_breached(self, bodies):
        self.apply_bodies("interactions", bodies)

    @event_batch_handler("interactions", "satisfaction_recorded", requeue_on_error=True)
    def apply_satisfaction_recorded(self, bodies):
        self.apply_bodies("interactions", bodies)

    @timer(interval=1)
    def segment_timer(self):
        """Recompute segments when their inputs changed (or hourly), at most every
        CRM_REPORTS_SEGMENT_SECONDS (longer when a recompute takes long)."""
        schedule, now = self.segment_schedule, utcnow()
        if schedule.waits(now, self.inbox.behind()):
            return
        if rebuild.active_rebuild(self.db) is not None:
            self.db.rollback()
            return  # half-built inputs would move customers for nothing
        inputs = views.events_applied(self.db, segment_view.INPUT_VIEWS)
        stale = schedule.last_run is None or now - schedule.last_run >= segment_view.RECOMPUTE_EVERY
        self.db.rollback()
        if inputs != schedule.last_inputs or stale:
            started = time.monotonic()
            self.recompute_segments()
            schedule.ran(now, inputs, time.monotonic() - started)

    @timer(interval=SNAPSHOT_SECONDS, eager=True)
    def snapshot_timer(self):
        """Keep today's funnel snapshots ready for answers as of a past moment (at start,
        then whenever one is missing: a new day, a late event removed it). Not while a
        backlog drains: its past-dated deal events would remove it again at once (an
        answer as of a past moment makes the one it needs meanwhile)."""
        if self.inbox.behind():
            return
        if rebuild.active_rebuild(self.db) is not None:
            self.db.rollback()
            return  # made from half-built views, it would soon be removed again
        made = funnel_snapshots.keep_today(self.db, utcnow())
        if made:
            log.info("funnel snapshots made: %s", made)

    @rpc
    def recompute_segments(self):
        """Assign every customer's segment now; emits segment_changed for each that moved."""
        now = utcnow()
        events = segment_view.recompute(self.db, now)
        self.outbox.add_many(self.db, events)
        views.touch(self.db, segment_view.SEGMENTS_VIEW, now)
        self.db.commit()
        return {"moved": len(events)}

    @rpc(expected_exceptions=ValidationFailed)
    def segments_report(self, query=None):
        """Per segment: customers, share, avg_monetary; as of now or `as_of`."""
        params = load_query(SegmentsQuery(), query)
        if params.get("as_of"):
            compute = partial(segment_view.segments_as_of, self.db, utcnow(), params["as_of"])
        else:
            compute = partial(segment_view.segments_report, self.db)
        return self.answer("segments", segment_view.SEGMENTS_VIEW, params, compute)

    @rpc(expected_exceptions=ValidationFailed)
    def segment_members(self, segment, query=None):
        """The customers in one segment, by id, with the metrics that put them there."""
        params = load_query(SegmentMembersQuery(), query)
        return self.answer(
            f"segment_members:{segment}",
            segment_view.SEGMENTS_VIEW,
            params,
            partial(segment_view.members, self.db, segment, params["limit"], params.get("cursor")),
        )

    @rpc(expected_exceptions=(ValidationFailed, NotFound))
    def funnel_report(self, query=None):
        """Per stage of a pipeline: entered, current, converted, rates, dwell; as of now or then."""
        params = load_query(FunnelQuery(), query)
        filters = {
            "pipeline_id": params.get("pipeline_id"),
            "owner": params.get("owner"),
            "days": tuple(
                day.isoformat() if day else None
                for day in (params.get("from_day"), params.get("to_day"))
            ),
        }
        if params.get("as_of"):
            compute = partial(
                funnel_snapshots.funnel_as_of, self.db, params["as_of"], utcnow(), **filters
            )
        else:
            compute = partial(funnel_view.funnel_report, self.db, **filters)
        return self.answer("funnel", funnel_view.FUNNEL_VIEW, params, compute)

    @rpc(expected_exceptions=ValidationFailed)
    def sales_report(self, query=None):
        """Won and lost per owner and month closed; weighted forecast per expected close month."""
        params = load_query(SalesQuery(), query)
        window = sales.window(params.get("from_month"), params.get("to_month"), utcnow())
        return self.answer(
            "sales",
            views.SALES_VIEW,
            # The default window moves with the month: part of the cache key.
            {**params, "window": [window.first, window.last, window.unscheduled]},
            partial(views.sales_report, self.db, params.get("owner"), window),
        )

    @rpc(expected_exceptions=ValidationFailed)
    def satisfaction_report(self, query=None):
        """CSAT average, share of 4-5 and distribution; by agent, month or channel; as of then."""
        params = load_query(SatisfactionQuery(), query)
        return self.answer(
            "satisfaction",
            ticket_view.SATISFACTION_VIEW,
            params,
            partial(
                ticket_view.satisfaction_report,
                self.db,
                group_by=params.get("group_by"),
                days=(params.get("from_day"), params.get("to_day")),
                agent=params.get("agent"),
                channel=params.get("channel"),
                as_of=params.get("as_of"),
            ),
        )

    @rpc(expected_exceptions=ValidationFailed)
    def service_report(self, query=None):
        """Tickets opened and resolved, response and resolution times, SLA breaches; by agent."""
        params = load_query(ServiceQuery(), query)
        return self.answer(
            "service",
            ticket_view.SERVICE_VIEW,
            params,
            partial(
                ticket_view.service_report,
                self.db,
                days=(params.get("from_day"), params.get("to_day")),
                agent=params.get("agent"),
                priority=params.get("priority"),
                channel=params.get("channel"),
            ),
        )

    @rpc
    def customers_by_status_owner(self, query=None):
        """Customers per lifecycle status and owner (`query` takes no filters yet)."""
        return self.answer(
            "customers",
            views.CUSTOMERS_VIEW,
            {},
            partial(views.customers_by_status_owner, self.db),
        )

    @rpc
    def forget_answers(self):
        """Drop the answers this instance keeps in memory (those in Redis stay): its next
        reads ask Redis, or compute. For benchmarks of reads after a change."""
        return {"forgotten": self.cache.forget()}

    @rpc
    def request_rebuild(self, by=None):
        """Ask for every view to be rebuilt from the producers' logs; answers the rebuild
        (the one under way, if any) and whether it is new."""
        requested, created = rebuild.request(self.db, by)
        return {"rebuild": rebuild.shown(requested), "created": created}

    @rpc
    def rebuild_status(self):
        """The latest rebuild, or None."""
        return rebuild.shown(rebuild.latest(self.db))

    @timer(interval=1)
    def rebuild_timer(self):
        """Carry out a requested rebuild, or take over one whose instance went quiet."""
        rebuild_id = rebuild.claim(self.db, utcnow())
        if rebuild_id is None:
            return
        for producer in REPLAY_ORDER:
            self.replay_log(rebuild_id, producer)
        self.count_deals()
        self.recompute_segments()
        with self.inbox.database.session() as session:
            rebuild.finish(session, rebuild_id)

    def replay_log(self, rebuild_id, producer):
        """Apply the producer's whole log, a page at a time, from where the rebuild stands.

        The next page is asked for and loaded while one is applied: the producer reads
        and sends it on the other core, and its events load while the page's statements
        wait for PostgreSQL (asking for a page had cost a fifth of applying one)."""
        with self.inbox.database.session() as session:
            cursor = rebuild.cursors_of(session.get(rebuild.Rebuild, rebuild_id)).get(producer)
        page, loaded = self.read_page(producer, cursor)
        while page["events"]:
            following = eventlet.spawn(self.read_page, producer, page["next_cursor"])
            try:
                self.apply_page(rebuild_id, producer, page, loaded)
            except BaseException:
                following.kill()
                raise
            page, loaded = following.wait()

    def count_deals(self):
        """Count every deal's funnel again from its moves: a rebuild's replay stores them
        uncounted."""
        while True:
            try:
                with self.inbox.database.session() as session:
                    deal_counts.count_every_deal(session)
                    session.commit()
                return
            except RETRYABLE as exc:
                log.warning("rebuild's deal counts not made yet, again: %s", exc)
                eventlet.sleep(RETRY_PAUSE_SECONDS)

    def read_page(self, producer, cursor):
        """The page of the producer's log after `cursor`, and its events loaded
        (loaded_events)."""
        page = ask(
            getattr(self, producer),
            "events_since",
            cursor,
            rebuild.PAGE_SIZE,
            timeout=LOG_PAGE_TIMEOUT_SECONDS,
            service=producer,
        )
        return page, loaded_events(producer, page["events"])

    def apply_page(self, rebuild_id, producer, page, loaded=None):
        """One page of a log in one transaction with the rebuild's progress (`loaded`: its
        events as loaded_events gives them, if loaded already). Its invalid events go to
        the dead letters first, as they would arriving live."""
        envelopes, invalid = loaded or loaded_events(producer, page["events"])
        for body in invalid:
            self.apply(producer, body)  # a dead letter, as it would be live
        while True:
            try:
                with self.inbox.database.session() as session:
                    applied = apply_many(
                        session,
                        AppliedEvent,
                        envelopes,
                        partial(replayer_of, producer),
                    )
                    rebuild.record_page(session, rebuild_id, producer, page, len(applied))
                    session.commit()
                return
            except RETRYABLE as exc:
                # The database is away, or a live consumer applied one of these meanwhile.
                log.warning("rebuild page of %s not applied yet, again: %s", producer, exc)
                eventlet.sleep(RETRY_PAUSE_SECONDS)
            except SQLAlchemyError as exc:
                # Some event of the page cannot apply: one at a time, to the dead letters.
                log.warning("rebuild applies a page of %s event by event: %s", producer, exc)
                dead_already = {id(body) for body in invalid}
                applied = sum(
                    bool(self.apply(producer, body))
                    for body in page["events"]
                    if id(body) not in dead_already
                )
                with self.inbox.database.session() as session:
                    rebuild.record_page(session, rebuild_id, producer, page, applied)
                    session.commit()
                return

    def answer(self, report, view, params, compute):
        """`compute()`'s answer, from the cache while `view` has not changed since, with the
        view's freshness: as of now, or of the moment asked for (`as_of`)."""
        state, rebuilding = self.states.read(self.db, view)
        key = self.cache.key(report, state.events_applied if state else 0, params)
        answer = self.cache.get(key)
        if answer is None:
            answer = compute()
            self.cache.put(key, answer)
            # A rebuild that began meanwhile may have emptied what compute() read.
            rebuilding = rebuilding or rebuild.active_rebuild(self.db) is not None
        # Its connection back to the pool now, not once the reply is sent: under load the
        # reads in flight would otherwise each hold one (SQLite's pool then opens and
        # closes connections, PostgreSQL's makes reads wait for one).
        self.db.rollback()
        as_of = params.get("as_of")
        if rebuilding:
            answer["rebuilding"] = True
        answer.update(
            views.freshness_at(state, as_of) if as_of else views.freshness(state, utcnow())
        )
        return answer


def load_query(schema, query):
    try:
        return schema.load(query or {})
    except ValidationError as exc:
        raise ValidationFailed("Invalid report query.", exc.normalized_messages()) from None
