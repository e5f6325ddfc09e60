"""Events the reports service emits on exchange `reports.events`.

`segment_changed` arrives with the segmentation views; until then the
catalog is empty and the event log stays empty.
"""

CATALOG = {}
