"""Reading and writing pipelines, stages and deals; the shapes the service answers with."""

import uuid

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import aliased

from crm_common.db import lock_for
from services.pipeline import domain
from services.pipeline.exceptions import InvalidDeal, InvalidPipeline, StageInUse
from services.pipeline.models import Deal, Pipeline, Stage, StageChange

# --- pipelines and stages ---------------------------------------------------------------


def lock_pipeline(session, pipeline_id):
    """Stage changes of a pipeline wait for deals entering its stages, and the reverse."""
    lock_for(session, f"pipeline:{pipeline_id}")


def default_pipeline(session):
    return session.scalars(select(Pipeline).where(Pipeline.is_default.is_(True))).one()


def stages_of(session, pipeline_id, lock=False):
    """The pipeline's stages in order: its open stages, then won, then lost."""
    if lock:
        lock_pipeline(session, pipeline_id)
    return session.scalars(
        select(Stage)
        .where(Stage.pipeline_id == pipeline_id, Stage.position.is_not(None))
        .order_by(Stage.position)
    ).all()


def stage_plans(session, pipeline_id):
    """The pipeline's open stages, in order, as a change would list them to keep them."""
    return [
        domain.StagePlan(
            name=stage.name, probability=domain.probability_of(stage.probability_bp), id=stage.id
        )
        for stage in stages_of(session, pipeline_id)
        if stage.kind == domain.OPEN
    ]


def stage_of(session, deal):
    return session.get(Stage, deal.stage_id)


def open_stage(stages, name):
    for stage in stages:
        if stage.kind == domain.OPEN and stage.name == name:
            return stage
    if name in dict(domain.CLOSING_STAGES):
        message = f"Close a deal with POST .../{name}; '{name}' is not a stage to put it in."
    else:
        known = ", ".join(stage.name for stage in stages if stage.kind == domain.OPEN)
        message = f"No open stage '{name}' in this pipeline (its stages: {known})."
    raise InvalidDeal(message, {"stage": [message]})


def closing_stage(stages, kind):
    return next(stage for stage in stages if stage.kind == kind)


def stage_closed_from(session, deal, stages):
    """Where a reopened deal goes: the stage it was won or lost from, if still in use."""
    from_stage_id = session.scalars(
        select(StageChange.from_stage_id)
        .where(StageChange.deal_id == deal.id, StageChange.kind.in_((domain.WON, domain.LOST)))
        .order_by(StageChange.id.desc())
        .limit(1)
    ).first()
    open_stages = [stage for stage in stages if stage.kind == domain.OPEN]
    return next((stage for stage in open_stages if stage.id == from_stage_id), open_stages[0])


def plan_stages(session, pipeline, plans):
    """Make the pipeline's open stages what `plans` lists, in that order.

    A plan with an id renames or moves that stage (its history stays); one
    without adds a stage; an open stage left out is archived, unless open
    deals are in it. won and lost follow the open stages.
    """
    existing = {
        stage.id: stage
        for stage in session.scalars(select(Stage).where(Stage.pipeline_id == pipeline.id))
    }
    listed = {plan.id for plan in plans if plan.id}
    unknown = [
        plan.id
        for plan in plans
        if plan.id and (plan.id not in existing or existing[plan.id].kind != domain.OPEN)
    ]
    if unknown:
        raise InvalidPipeline(
            "Stage ids must be open stages of this pipeline.",
            {"stages": [f"Not an open stage of this pipeline: {', '.join(unknown)}."]},
        )
    leaving = [
        stage
        for stage in existing.values()
        if stage.kind == domain.OPEN and stage.position is not None and stage.id not in listed
    ]
    busy = [stage.name for stage in leaving if _has_open_deals(session, stage.id)]
    if busy:
        raise StageInUse(
            f"Open deals are in {', '.join(busy)}; move them before removing the stage.",
            details={"stages": busy},
        )
    for stage in leaving:
        stage.position = None
    session.flush()
    for position, plan in enumerate(plans):
        stage = existing.get(plan.id) if plan.id else None
        if stage is None:
            stage = Stage(id=str(uuid.uuid4()), pipeline_id=pipeline.id, kind=domain.OPEN)
            session.add(stage)
        stage.name = plan.name
        stage.probability_bp = domain.to_basis_points(plan.probability)
        stage.position = position
    closing = {stage.kind: stage for stage in existing.values() if stage.kind != domain.OPEN}
    for offset, (kind, probability) in enumerate(domain.CLOSING_STAGES):
        stage = closing.get(kind)
        if stage is None:
            stage = Stage(
                id=str(uuid.uuid4()),
                pipeline_id=pipeline.id,
                kind=kind,
                name=kind,
                probability_bp=domain.to_basis_points(probability),
            )
            session.add(stage)
        stage.position = len(plans) + offset
    session.flush()


def _has_open_deals(session, stage_id):
    return session.scalar(
        select(func.count())
        .select_from(Deal)
        .where(Deal.stage_id == stage_id, Deal.status == domain.OPEN)
    )


def stage_output(stage):
    return {
        "id": stage.id,
        "name": stage.name,
        "kind": stage.kind,
        "probability": domain.from_basis_points(stage.probability_bp),
        "position": stage.position,
    }


def pipeline_output(session, pipeline):
    return {
        "id": pipeline.id,
        "name": pipeline.name,
        "is_default": pipeline.is_default,
        "stages": [stage_output(stage) for stage in stages_of(session, pipeline.id)],
        "created_at": pipeline.created_at.isoformat(),
        "version": pipeline.version,
    }


def pipeline_data(session, pipeline):
    """The data of pipeline_created / pipeline_changed."""
    return {
        "pipeline_id": pipeline.id,
        "name": pipeline.name,
        "is_default": pipeline.is_default,
        "stages": [
            {"stage_id": shown.pop("id"), **shown}
            for shown in map(stage_output, stages_of(session, pipeline.id))
        ],
    }


# --- deals ------------------------------------------------------------------------------


def deal_fields(deal):
    """The fields a client may change, as the API shows them."""
    return {
        "customer_id": deal.customer_id,
        "title": deal.title,
        "amount": domain.from_cents(deal.amount_cents),
        "currency": deal.currency,
        "owner": deal.owner,
        "expected_close_date": _iso(deal.expected_close_date),
    }


def api_fields(patch):
    """A loaded patch (cents, dates, UUIDs) as the API shows the same fields."""
    shown = dict(patch)
    if "amount" in shown:
        shown["amount"] = domain.from_cents(shown["amount"])
    if "expected_close_date" in shown:
        shown["expected_close_date"] = _iso(shown["expected_close_date"])
    if "customer_id" in shown:
        shown["customer_id"] = str(shown["customer_id"])
    return shown


def deal_state(deal, stage):
    """The deal as every deal event carries it."""
    return {
        "deal_id": deal.id,
        **deal_fields(deal),
        "pipeline_id": deal.pipeline_id,
        "stage_id": stage.id,
        "stage": stage.name,
        "probability": domain.from_basis_points(stage.probability_bp),
        "status": deal.status,
        "created_at": deal.created_at.isoformat(),
        "closed_at": _iso(deal.closed_at),
    }


def deal_output(deal, stage):
    state = deal_state(deal, stage)
    return {
        "id": state.pop("deal_id"),
        **state,
        "lost_reason": deal.lost_reason,
        "stage_entered_at": deal.stage_entered_at.isoformat(),
        "created_by": deal.created_by,
        "updated_at": deal.updated_at.isoformat(),
        "version": deal.version,
    }


def find_deals(session, params, limit, after=None):
    """(deal, stage) pairs matching the filters, newest first, after the position `after`."""
    query = select(Deal, Stage).join(Stage, Deal.stage_id == Stage.id)
    if params.get("customer_id"):
        query = query.where(Deal.customer_id == str(params["customer_id"]))
    if params.get("owner"):
        query = query.where(Deal.owner == params["owner"])
    if params.get("pipeline_id"):
        query = query.where(Deal.pipeline_id == str(params["pipeline_id"]))
    if params.get("stage"):
        query = query.where(Stage.name == params["stage"])
    if params.get("status"):
        query = query.where(Deal.status == params["status"])
    if after is not None:
        created_at, deal_id = after
        query = query.where(
            or_(
                Deal.created_at < created_at,
                and_(Deal.created_at == created_at, Deal.id < deal_id),
            )
        )
    query = query.order_by(Deal.created_at.desc(), Deal.id.desc()).limit(limit)
    return session.execute(query).all()


def history(session, deal_id):
    source, target = aliased(Stage), aliased(Stage)
    rows = session.execute(
        select(StageChange, source.name, target.name)
        .outerjoin(source, StageChange.from_stage_id == source.id)
        .join(target, StageChange.to_stage_id == target.id)
        .where(StageChange.deal_id == deal_id)
        .order_by(StageChange.id)
    ).all()
    return [
        {
            "kind": change.kind,
            "from_stage": from_name,
            "to_stage": to_name,
            "at": change.changed_at.isoformat(),
            "by": change.changed_by,
            "dwell_seconds": change.dwell_seconds,
            "reason": change.reason,
        }
        for change, from_name, to_name in rows
    ]


def _iso(value):
    return value.isoformat() if value is not None else None
