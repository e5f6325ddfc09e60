"""The parts of other services' events that reports read (tolerant readers)."""

from marshmallow import EXCLUDE, Schema, fields


class CustomerCreatedData(Schema):
    class Meta:
        unknown = EXCLUDE

    customer_id = fields.String(required=True)
    status = fields.String(required=True)
    owner = fields.String(load_default=None, allow_none=True)
    created_at = fields.AwareDateTime(required=True, format="iso")
