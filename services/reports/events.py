"""Events the reports service emits on exchange `reports.events`.

The segmentation views emit `segment_changed` when a customer moves between
segments; the customers service files customers under their segment.
"""

from marshmallow import Schema, fields


class SegmentChanged(Schema):
    customer_id = fields.String(required=True)
    from_segment = fields.String(allow_none=True, required=True)
    to_segment = fields.String(allow_none=True, required=True)


CATALOG = {
    "segment_changed": SegmentChanged(),
}
