"""The committed event catalog (docs/asyncapi.yaml), read the way a subscriber's tooling would."""

import copy
from pathlib import Path

import yaml
from jsonschema import Draft7Validator

from crm_common import asyncapi

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / asyncapi.DOCUMENT_PATH


def load_document():
    return yaml.safe_load(COMMITTED.read_text())


def resolve(document, ref):
    """The node a local `$ref` (`#/components/...`) points at."""
    node = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def payload_validator(document, event_type, closed=False):
    """A JSON Schema validator of one event's message payload, its $refs within the document.

    `closed` refuses fields the document does not name (the document itself leaves room
    for fields added within a schema_version): real events must have none.
    """
    components = copy.deepcopy(document["components"])
    if closed:
        for schema in components["schemas"].values():
            if "properties" in schema:
                schema["additionalProperties"] = False
    channel = document["channels"][event_type]
    message = resolve(document, channel["messages"][event_type]["$ref"])
    return Draft7Validator({**message["payload"], "components": components})
