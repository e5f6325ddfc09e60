"""The parts of other services' events that reports read (tolerant readers)."""

from marshmallow import EXCLUDE, Schema, fields, validate


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
