"""Events the customers service emits on exchange `customers.events`.

Each schema describes the `data` of one event type at schema_version 1.
Changes within a version are additive only.
"""

from marshmallow import Schema, fields


class CustomerCreated(Schema):
    customer_id = fields.String(required=True)
    name = fields.String(required=True)
    email = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    company = fields.String(allow_none=True)
    owner = fields.String(allow_none=True)
    status = fields.String(required=True)
    tags = fields.List(fields.String(), required=True)
    attributes = fields.Dict(required=True)
    created_at = fields.String(required=True)


CATALOG = {
    "customer_created": CustomerCreated(),
}
