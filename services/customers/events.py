"""Events the customers service emits on exchange `customers.events`.

Each schema describes the `data` of one event type at schema_version 1.
Changes within a version are additive only.
"""

from marshmallow import Schema, fields

from crm_common.envelope import Change


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


class CustomerUpdated(Schema):
    customer_id = fields.String(required=True)
    changes = fields.Dict(keys=fields.String(), values=Change, required=True)


class CustomerMerged(Schema):
    survivor_id = fields.String(required=True)
    merged_ids = fields.List(fields.String(), required=True)
    # What the survivor took from the merged customers: {field: [old, new]}.
    changes = fields.Dict(keys=fields.String(), values=Change, required=True)


class CustomerErased(Schema):
    customer_id = fields.String(required=True)
    erased_at = fields.String(required=True)


CATALOG = {
    "customer_created": CustomerCreated(),
    "customer_updated": CustomerUpdated(),
    "customer_merged": CustomerMerged(),
    "customer_erased": CustomerErased(),
}
