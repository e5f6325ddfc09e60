"""The parts of other services' events that reports read (tolerant readers)."""

from marshmallow import EXCLUDE, RAISE, Schema, fields, validate


class CustomerCreatedData(Schema):
    class Meta:
        unknown = EXCLUDE

    customer_id = fields.String(required=True)
    status = fields.String(required=True)
    owner = fields.String(load_default=None, allow_none=True)
    created_at = fields.AwareDateTime(required=True, format="iso")


Change = fields.List(fields.Raw(allow_none=True), validate=validate.Length(equal=2))


class CustomerUpdatedData(Schema):
    class Meta:
        unknown = EXCLUDE

    customer_id = fields.String(required=True)
    changes = fields.Dict(keys=fields.String(), values=Change, required=True)


class CustomerMergedData(Schema):
    class Meta:
        unknown = EXCLUDE

    survivor_id = fields.String(required=True)
    merged_ids = fields.List(fields.String(), required=True)
    changes = fields.Dict(keys=fields.String(), values=Change, required=True)


class DealStateData(Schema):
    class Meta:
        unknown = EXCLUDE

    customer_id = fields.String(required=True)
    pipeline_id = fields.String(required=True)
    stage_id = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(("open", "won", "lost")))
    owner = fields.String(required=True, allow_none=True)
    currency = fields.String(required=True, validate=validate.Length(equal=3))
    amount = fields.Decimal(required=True, allow_nan=False, as_string=True)
    probability = fields.Float(required=True, validate=validate.Range(min=0, max=1))
    expected_close_date = fields.String(required=True, allow_none=True)
    closed_at = fields.String(required=True, allow_none=True)
    created_at = fields.AwareDateTime(required=True, format="iso")


class DealEventData(Schema):
    """Every deal event (created, updated, stage changed, won, lost, reopened) carries `deal`."""

    class Meta:
        unknown = EXCLUDE

    deal_id = fields.String(required=True)
    deal = fields.Nested(DealStateData, required=True)
    # Stage steps (moved, won, lost, reopened) say where from, and the dwell there.
    from_stage_id = fields.String(load_default=None)
    to_stage_id = fields.String(load_default=None)
    dwell_seconds = fields.Integer(load_default=None, validate=validate.Range(min=0))


class StageData(Schema):
    class Meta:
        unknown = EXCLUDE

    stage_id = fields.String(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(("open", "won", "lost")))
    position = fields.Integer(required=True)


class PipelineEventData(Schema):
    class Meta:
        unknown = EXCLUDE

    pipeline_id = fields.String(required=True)
    name = fields.String(required=True)
    is_default = fields.Boolean(required=True)
    stages = fields.List(fields.Nested(StageData), required=True)


MONTH = validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$", error="A month as YYYY-MM.")


class FunnelQuery(Schema):
    class Meta:
        unknown = RAISE

    pipeline_id = fields.UUID()
    owner = fields.String(validate=validate.Length(min=1, max=100))
    # First and last day (inclusive) the deals counted were created.
    from_day = fields.Date(data_key="from")
    to_day = fields.Date(data_key="to")
    as_of = fields.AwareDateTime(format="iso")


class SalesQuery(Schema):
    class Meta:
        unknown = RAISE

    owner = fields.String(validate=validate.Length(min=1, max=100))
    # First and last month (YYYY-MM) of closing, for performance, and of expected close.
    from_month = fields.String(data_key="from", validate=MONTH)
    to_month = fields.String(data_key="to", validate=MONTH)


class InteractionLoggedData(Schema):
    class Meta:
        unknown = EXCLUDE

    interaction_id = fields.String(required=True)
    customer_id = fields.String(required=True)
    channel = fields.String(required=True)
    occurred_at = fields.AwareDateTime(required=True, format="iso")


class SegmentsQuery(Schema):
    class Meta:
        unknown = RAISE

    as_of = fields.AwareDateTime(format="iso")


class SegmentMembersQuery(Schema):
    class Meta:
        unknown = RAISE

    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    cursor = fields.UUID()
