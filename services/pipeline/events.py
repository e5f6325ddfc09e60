"""Events the pipeline service emits on exchange `pipeline.events`.

Each schema describes the `data` of one event type at schema_version 1.
Changes within a version are additive only.

Every deal event carries `deal`, the deal as it stands after the event, so a
subscriber that keeps the latest state per deal (by `sequence`) needs no
other event to be correct. Closing a deal is one event: `deal_won` or
`deal_lost` (from the stage it was in, with its dwell time there); no
separate `deal_stage_changed` into the closing stage is sent.
"""

from marshmallow import Schema, fields

from crm_common.envelope import Change


class StageData(Schema):
    stage_id = fields.String(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True)  # open, won or lost
    probability = fields.Float(required=True)
    position = fields.Integer(required=True)


class PipelineData(Schema):
    pipeline_id = fields.String(required=True)
    name = fields.String(required=True)
    is_default = fields.Boolean(required=True)
    # In order: the open stages, then won, then lost. Archived stages are not listed.
    stages = fields.List(fields.Nested(StageData), required=True)


class DealState(Schema):
    deal_id = fields.String(required=True)
    customer_id = fields.String(required=True)
    pipeline_id = fields.String(required=True)
    stage_id = fields.String(required=True)
    stage = fields.String(required=True)
    probability = fields.Float(required=True)
    status = fields.String(required=True)
    title = fields.String(required=True)
    amount = fields.String(required=True)  # decimal text, e.g. "1234.50"
    currency = fields.String(required=True)
    owner = fields.String(allow_none=True, required=True)
    expected_close_date = fields.String(allow_none=True, required=True)
    created_at = fields.String(required=True)
    closed_at = fields.String(allow_none=True, required=True)


class DealEvent(Schema):
    deal_id = fields.String(required=True)
    deal = fields.Nested(DealState, required=True)
    by = fields.String(allow_none=True, required=True)


class DealCreated(DealEvent):
    pass


class DealUpdated(DealEvent):
    changes = fields.Dict(keys=fields.String(), values=Change, required=True)
    # Why, when not a user's edit: "customer_merged" when the deal followed its customer.
    cause = fields.String(allow_none=True)


class StageStep(DealEvent):
    from_stage = fields.String(required=True)
    from_stage_id = fields.String(required=True)
    dwell_seconds = fields.Integer(required=True)


class DealStageChanged(StageStep):
    to_stage = fields.String(required=True)
    to_stage_id = fields.String(required=True)
    probability = fields.Float(required=True)


class DealWon(StageStep):
    won_at = fields.String(required=True)


class DealLost(StageStep):
    reason = fields.String(required=True)
    lost_at = fields.String(required=True)


class DealReopened(StageStep):
    to_stage = fields.String(required=True)
    to_stage_id = fields.String(required=True)
    probability = fields.Float(required=True)


CATALOG = {
    "pipeline_created": PipelineData(),
    "pipeline_changed": PipelineData(),
    "deal_created": DealCreated(),
    "deal_updated": DealUpdated(),
    "deal_stage_changed": DealStageChanged(),
    "deal_won": DealWon(),
    "deal_lost": DealLost(),
    "deal_reopened": DealReopened(),
}
