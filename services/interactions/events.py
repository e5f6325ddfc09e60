"""Events the interactions service emits on exchange `interactions.events`.

The interaction and ticket events join this catalog with their models.
"""

CATALOG = {}
