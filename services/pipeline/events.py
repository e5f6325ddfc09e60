"""Events the pipeline service emits on exchange `pipeline.events`.

The deal events (deal_created, deal_stage_changed, ...) join this catalog
with the deals themselves.
"""

CATALOG = {}
