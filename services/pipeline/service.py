"""The pipeline service: pipelines with ordered stages, deals, stage history."""

import uuid
from contextlib import contextmanager

from marshmallow import ValidationError
from nameko.dependency_providers import Config
from nameko.rpc import RpcProxy
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import flag_modified
from sqlalchemy.orm.exc import StaleDataError

from crm_common import cursors
from crm_common.customer_refs import (
    CustomerErasedData,
    CustomerMergedData,
    UnknownCustomer,
    check_customer,
    current_customer,
    record_erasure,
    record_merge,
    survivor_of,
)
from crm_common.db import Database
from crm_common.envelope import utcnow
from crm_common.errors import Unavailable
from crm_common.handlers import event_handler
from crm_common.inbox import Inbox
from crm_common.outbox import Outbox
from crm_common.rpc import rpc
from crm_common.service import EventConsumer, EventProducer, ServiceBase
from services.pipeline import domain, store
from services.pipeline.events import CATALOG
from services.pipeline.exceptions import (
    ConcurrentDealUpdate,
    ConcurrentPipelineUpdate,
    DealNotFound,
    InvalidDeal,
    InvalidPipeline,
    InvalidStageTransition,
    NotDealOwner,
    PipelineNameTaken,
    PipelineNotFound,
    StageInUse,
)
from services.pipeline.models import (
    AppliedEvent,
    CustomerFate,
    DeadLetter,
    Deal,
    OutboxEvent,
    Pipeline,
    StageChange,
)
from services.pipeline.schemas import (
    Actor,
    DealInput,
    DealPatch,
    DealQuery,
    LoseInput,
    MoveInput,
    PipelineInput,
    PipelinePatch,
    ReopenInput,
)

EXPECTED = (
    ConcurrentDealUpdate,
    ConcurrentPipelineUpdate,
    DealNotFound,
    InvalidDeal,
    InvalidPipeline,
    InvalidStageTransition,
    NotDealOwner,
    PipelineNameTaken,
    PipelineNotFound,
    StageInUse,
    UnknownCustomer,
    Unavailable,
)


def load(schema, payload, error=InvalidDeal, **options):
    try:
        return schema.load(payload if payload is not None else {}, **options)
    except ValidationError as exc:
        raise error("Invalid request.", exc.normalized_messages()) from None


class PipelineService(ServiceBase, EventProducer, EventConsumer):
    name = "pipeline"

    config = Config()
    db = Database()
    outbox = Outbox(OutboxEvent, CATALOG)
    inbox = Inbox(AppliedEvent, DeadLetter)
    customers = RpcProxy("customers")

    # --- pipelines -------------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def list_pipelines(self):
        pipelines = self.db.scalars(
            select(Pipeline).order_by(Pipeline.is_default.desc(), Pipeline.name)
        ).all()
        return {"items": [store.pipeline_output(self.db, pipeline) for pipeline in pipelines]}

    @rpc(expected_exceptions=EXPECTED)
    def get_pipeline(self, pipeline_id):
        return store.pipeline_output(self.db, self._pipeline(pipeline_id))

    @rpc(expected_exceptions=EXPECTED)
    def create_pipeline(self, payload):
        data = load(PipelineInput(), payload, InvalidPipeline)
        if any(plan.id for plan in data["stages"]):
            raise InvalidPipeline(
                "A new pipeline's stages have no ids yet.", {"stages": ["Leave out `id`."]}
            )
        domain.check_stage_plan(data["stages"])
        pipeline = Pipeline(
            id=str(uuid.uuid4()), name=data["name"], is_default=False, created_at=utcnow()
        )
        with self._unique_name(data["name"]):
            self.db.add(pipeline)
            self.db.flush()
        store.plan_stages(self.db, pipeline, data["stages"])
        self._pipeline_event("pipeline_created", pipeline)
        self.db.commit()
        return store.pipeline_output(self.db, pipeline)

    @rpc(expected_exceptions=EXPECTED)
    def update_pipeline(self, pipeline_id, payload):
        """Rename the pipeline; add, rename, reorder or archive its open stages.

        A change that changes nothing answers the pipeline as it is: no new
        version, no pipeline_changed.
        """
        data = load(PipelinePatch(), payload, InvalidPipeline)
        if "stages" in data:
            domain.check_stage_plan(data["stages"])
        # Locked before it is read: a change committed while this one waited
        # for the lock would leave it writing over a version it never read.
        store.lock_pipeline(self.db, pipeline_id)
        pipeline = self._pipeline(pipeline_id)
        current = store.stage_plans(self.db, pipeline.id)
        if not domain.changes_pipeline(
            pipeline.name, current, data.get("name"), data.get("stages")
        ):
            return store.pipeline_output(self.db, pipeline)
        name = data.get("name", pipeline.name)
        with self._unique_name(name):
            if "stages" in data:
                store.plan_stages(self.db, pipeline, data["stages"])
            # Renamed after the stage plan, which flushes: the pipeline's row is
            # written once, so its version moves on exactly once with any change.
            pipeline.name = name
            flag_modified(pipeline, "name")
            self._flush(pipeline, ConcurrentPipelineUpdate)
        self._pipeline_event("pipeline_changed", pipeline)
        self.db.commit()
        return store.pipeline_output(self.db, pipeline)

    # --- deals -----------------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def create_deal(self, payload, actor=None):
        data = load(DealInput(), payload)
        who = load(Actor(), actor)
        data["owner"] = data["owner"] or who["subject"]
        if not domain.may_act_for(who, data["owner"]):
            raise NotDealOwner(
                "You may create deals only in your own name.",
                {"owner": ["Leave it out, or give your own."]},
            )
        # Ask the customers service before the write transaction begins.
        customer_id = check_customer(
            self.customers, str(data["customer_id"]), self.config["CRM_RPC_TIMEOUT"]
        )
        pipeline = (
            self._pipeline(data["pipeline_id"])
            if data["pipeline_id"]
            else store.default_pipeline(self.db)
        )
        stages = store.stages_of(self.db, pipeline.id, lock=True)
        stage = store.open_stage(stages, data["stage"]) if data["stage"] else stages[0]
        now = utcnow()
        deal = Deal(
            id=str(uuid.uuid4()),
            customer_id=current_customer(self.db, CustomerFate, customer_id),
            pipeline_id=pipeline.id,
            stage_id=stage.id,
            title=data["title"],
            amount_cents=data["amount"],
            currency=data["currency"],
            owner=data["owner"],
            expected_close_date=data["expected_close_date"],
            status=domain.OPEN,
            stage_entered_at=now,
            created_at=now,
            created_by=who["subject"],
            updated_at=now,
        )
        self.db.add(deal)
        self.db.flush()
        self._history(deal, "created", None, stage, now, who["subject"])
        self._deal_event("deal_created", deal, stage, {"by": who["subject"]})
        self.db.commit()
        return store.deal_output(deal, stage)

    @rpc(expected_exceptions=EXPECTED)
    def get_deal(self, deal_id):
        deal = self._deal(deal_id)
        return store.deal_output(deal, store.stage_of(self.db, deal))

    @rpc(expected_exceptions=EXPECTED)
    def resolve_deal(self, deal_id):
        """For services filing records under a deal: `{"id", "customer_id", "state"}`, no error.

        `state` is the deal's status (open, won, lost), or missing for an unknown id.
        """
        try:
            deal = self._deal(deal_id)
        except DealNotFound:
            return {"id": None, "customer_id": None, "state": "missing"}
        return {"id": deal.id, "customer_id": deal.customer_id, "state": deal.status}

    @rpc(expected_exceptions=EXPECTED)
    def list_deals(self, query=None):
        """Deals, newest first, `limit` at a time; `next_cursor` resumes."""
        params = load(DealQuery(), query)
        after = None
        if params["cursor"]:
            try:
                after = cursors.decode_position(params["cursor"])
            except ValueError:
                raise InvalidDeal("Invalid cursor.", {"cursor": ["Invalid cursor."]}) from None
        if params.get("customer_id"):
            # A merged customer's deals are its survivor's now.
            params["customer_id"] = survivor_of(self.db, CustomerFate, str(params["customer_id"]))
        rows = store.find_deals(self.db, params, params["limit"] + 1, after)
        page = rows[: params["limit"]]
        next_cursor = None
        if len(rows) > params["limit"]:
            next_cursor = cursors.encode_position(page[-1][0].created_at, page[-1][0].id)
        return {
            "items": [store.deal_output(deal, stage) for deal, stage in page],
            "next_cursor": next_cursor,
        }

    @rpc(expected_exceptions=EXPECTED)
    def update_deal(self, deal_id, payload, actor=None):
        """Change the fields given; emits deal_updated with {field: [old, new]}."""
        patch = load(DealPatch(), payload)
        who = load(Actor(), actor)
        # Not found and not yours come before whether the new customer exists.
        deal = self._changeable(deal_id, who)
        if "customer_id" in patch:
            # No transaction is held across the call to customers: read the deal again after.
            self.db.rollback()
            patch["customer_id"] = check_customer(
                self.customers, str(patch["customer_id"]), self.config["CRM_RPC_TIMEOUT"]
            )
            deal = self._changeable(deal_id, who)
        if not domain.may_act_for(who, patch.get("owner", deal.owner)):
            raise NotDealOwner(
                "You may not give your deal to someone else.", {"owner": ["Not yours to give."]}
            )
        if "customer_id" in patch:
            patch["customer_id"] = current_customer(self.db, CustomerFate, patch["customer_id"])
        stage = store.stage_of(self.db, deal)
        before = store.deal_fields(deal)
        diff = domain.changes(before, store.api_fields(patch))
        if not diff:
            return store.deal_output(deal, stage)
        for field, value in patch.items():
            setattr(deal, "amount_cents" if field == "amount" else field, value)
        self._save(deal)
        self._deal_event(
            "deal_updated", deal, stage, {"by": who["subject"], "changes": diff, "cause": None}
        )
        self.db.commit()
        return store.deal_output(deal, stage)

    @rpc(expected_exceptions=EXPECTED)
    def move_deal(self, deal_id, payload, actor=None):
        """Move an open deal to another open stage of its pipeline."""
        target_name = load(MoveInput(), payload)["stage"]
        who = load(Actor(), actor)
        deal = self._changeable(deal_id, who)
        stages = store.stages_of(self.db, deal.pipeline_id, lock=True)
        domain.check_move(deal.status, store.stage_of(self.db, deal).name, target_name)
        target = store.open_stage(stages, target_name)
        return self._take_step("moved", "deal_stage_changed", deal, target, who)

    @rpc(expected_exceptions=EXPECTED)
    def win_deal(self, deal_id, actor=None):
        who = load(Actor(), actor)
        deal = self._changeable(deal_id, who)
        domain.check_close(deal.status, domain.WON)
        return self._close(deal, domain.WON, who)

    @rpc(expected_exceptions=EXPECTED)
    def lose_deal(self, deal_id, payload, actor=None):
        reason = load(LoseInput(), payload)["reason"].strip()
        who = load(Actor(), actor)
        deal = self._changeable(deal_id, who)
        domain.check_close(deal.status, domain.LOST, reason)
        return self._close(deal, domain.LOST, who, reason)

    @rpc(expected_exceptions=EXPECTED)
    def reopen_deal(self, deal_id, payload=None, actor=None):
        """Open a won or lost deal again, in the stage it closed from unless told otherwise."""
        target_name = load(ReopenInput(), payload)["stage"]
        who = load(Actor(), actor)
        deal = self._changeable(deal_id, who)
        domain.check_reopen(deal.status)
        stages = store.stages_of(self.db, deal.pipeline_id, lock=True)
        if target_name:
            target = store.open_stage(stages, target_name)
        else:
            target = store.stage_closed_from(self.db, deal, stages)
        reopened = {"status": domain.OPEN, "closed_at": None, "lost_reason": None}
        return self._take_step("reopened", "deal_reopened", deal, target, who, reopened)

    @rpc(expected_exceptions=EXPECTED)
    def deal_history(self, deal_id):
        """The deal's steps, oldest first: created, moved, won, lost, reopened."""
        deal = self._deal(deal_id)
        return {"deal_id": deal.id, "items": store.history(self.db, deal.id)}

    # --- events from other services --------------------------------------------------------

    # Handler names are part of their queues' names: never rename one.
    @event_handler("customers", "customer_merged", requeue_on_error=True)
    def apply_customer_merged(self, body):
        self.inbox.apply(body, self._apply_merge, CustomerMergedData())

    @event_handler("customers", "customer_erased", requeue_on_error=True)
    def apply_customer_erased(self, body):
        self.inbox.apply(body, self._apply_erasure, CustomerErasedData())

    def _apply_merge(self, session, envelope):
        """The merged customers' deals follow their survivor, each with a deal_updated."""

        def reparent(session, from_ids, to_id):
            # Lock the deals, in one order, before the first write: a user's
            # update of one of them commits first or waits, and its version is
            # the one read here, so neither a lost update nor a deadlock (with
            # the outbox lock the first write's event takes) can happen.
            moved = session.scalars(
                select(Deal)
                .where(Deal.customer_id.in_(from_ids))
                .order_by(Deal.id)
                .with_for_update()
                .execution_options(populate_existing=True)
            ).all()
            for deal in moved:
                old = deal.customer_id
                deal.customer_id = to_id
                deal.updated_at = utcnow()
                session.flush()
                self.outbox.add(
                    session,
                    "deal_updated",
                    deal.id,
                    deal.version,
                    {
                        "deal_id": deal.id,
                        "deal": store.deal_state(deal, store.stage_of(session, deal)),
                        "by": None,
                        "changes": {"customer_id": [old, to_id]},
                        "cause": "customer_merged",
                    },
                )

        record_merge(session, CustomerFate, envelope["data"], reparent)

    def _apply_erasure(self, session, envelope):
        """No personal data stays: free text of the customer's deals goes, here and in the log."""

        def scrub(session, customer_id):
            ids = session.scalars(select(Deal.id).where(Deal.customer_id == customer_id)).all()
            # Core updates: the deals' versions (their event sequences) stay where they are.
            session.execute(
                update(Deal)
                .where(Deal.customer_id == customer_id)
                .values(title=domain.ERASED_TITLE)
                .execution_options(synchronize_session=False)
            )
            session.execute(
                update(Deal)
                .where(Deal.customer_id == customer_id, Deal.lost_reason.is_not(None))
                .values(lost_reason=domain.ERASED_TEXT)
                .execution_options(synchronize_session=False)
            )
            for change in session.scalars(
                select(StageChange).where(
                    StageChange.deal_id.in_(ids), StageChange.reason.is_not(None)
                )
            ):
                change.reason = domain.ERASED_TEXT
            for row in session.scalars(
                select(OutboxEvent).where(OutboxEvent.aggregate_id.in_(ids))
            ):
                row.body = domain.scrubbed_event(row.body)

        record_erasure(session, CustomerFate, envelope["data"], scrub)

    # --- helpers ---------------------------------------------------------------------------

    def _pipeline(self, pipeline_id):
        pipeline = self.db.get(Pipeline, str(pipeline_id)) if pipeline_id else None
        if pipeline is None:
            raise PipelineNotFound(f"No pipeline {pipeline_id}.", details={"id": str(pipeline_id)})
        return pipeline

    def _deal(self, deal_id):
        deal = self.db.get(Deal, str(deal_id)) if isinstance(deal_id, str) and deal_id else None
        if deal is None:
            raise DealNotFound(f"No deal {deal_id}.", details={"id": str(deal_id)})
        return deal

    def _changeable(self, deal_id, who):
        deal = self._deal(deal_id)
        if not domain.may_act_for(who, deal.owner):
            raise NotDealOwner(
                f"Deal {deal.id} is owned by someone else; you may change only your own.",
                details={"id": deal.id},
            )
        return deal

    def _close(self, deal, outcome, who, reason=None):
        target = store.closing_stage(store.stages_of(self.db, deal.pipeline_id, lock=True), outcome)
        now = utcnow()
        closed = {"status": outcome, "closed_at": now, "lost_reason": reason}
        if outcome == domain.WON:
            extra = {"won_at": now.isoformat()}
        else:
            extra = {"lost_at": now.isoformat(), "reason": reason}
        return self._take_step(
            outcome, f"deal_{outcome}", deal, target, who, closed, extra, reason, now
        )

    def _take_step(
        self, kind, event_type, deal, target, who, fields=None, extra=None, reason=None, now=None
    ):
        """Put the deal in `target` (setting `fields`), record the step, emit, commit."""
        now = now or utcnow()
        current = store.stage_of(self.db, deal)  # before any change: a query flushes them
        dwell = domain.dwell_seconds(deal.stage_entered_at, now)
        for field, value in (fields or {}).items():
            setattr(deal, field, value)
        deal.stage_id = target.id
        deal.stage_entered_at = now
        self._save(deal)
        self._history(deal, kind, current, target, now, who["subject"], dwell, reason)
        if target.kind == domain.OPEN:
            extra = {
                "to_stage": target.name,
                "to_stage_id": target.id,
                "probability": domain.from_basis_points(target.probability_bp),
            }
        self._deal_event(
            event_type,
            deal,
            target,
            {
                "by": who["subject"],
                "from_stage": current.name,
                "from_stage_id": current.id,
                "dwell_seconds": dwell,
                **(extra or {}),
            },
        )
        self.db.commit()
        return store.deal_output(deal, target)

    def _history(self, deal, kind, current, target, now, by, dwell=None, reason=None):
        self.db.add(
            StageChange(
                deal_id=deal.id,
                kind=kind,
                from_stage_id=current.id if current else None,
                to_stage_id=target.id,
                changed_at=now,
                changed_by=by,
                dwell_seconds=dwell,
                reason=reason,
            )
        )

    def _save(self, deal):
        deal.updated_at = utcnow()
        self._flush(deal, ConcurrentDealUpdate)

    def _flush(self, row, conflict):
        """Write `row`'s changes; its version having moved on since it was read is `conflict`."""
        # Named before the flush: a failed flush expires the row, and the
        # session it would reload from needs a rollback first.
        row_id = row.id
        try:
            self.db.flush()
        except StaleDataError:
            raise conflict(
                f"{type(row).__name__} {row_id} changed meanwhile; read it again and retry.",
                details={"id": row_id},
            ) from None

    def _deal_event(self, event_type, deal, stage, data):
        self.outbox.add(
            self.db,
            event_type,
            deal.id,
            deal.version,
            {"deal_id": deal.id, "deal": store.deal_state(deal, stage), **data},
        )

    @contextmanager
    def _unique_name(self, name):
        """Around writes that give a pipeline `name`: another pipeline's name is a conflict.

        `name` is what the caller asked for, taken before the rollback that
        expires the pipeline's attributes.
        """
        try:
            yield
        except IntegrityError:
            self.db.rollback()
            raise PipelineNameTaken(
                f"A pipeline is named {name!r} already.",
                {"name": ["Taken by another pipeline."]},
                {"name": name},
            ) from None

    def _pipeline_event(self, event_type, pipeline):
        self.outbox.add(
            self.db,
            event_type,
            pipeline.id,
            pipeline.version,
            store.pipeline_data(self.db, pipeline),
        )
