"""The event catalog as an AsyncAPI 3.0 document, built from the schemas in code.

`crm asyncapi` writes it to docs/asyncapi.yaml; a unit test holds the
committed file to a fresh build, so the published catalog cannot drift from
the marshmallow schemas that producers validate their events with
(crm_common.envelope and each service's `events.py` CATALOG). The JSON
schemas come from apispec's MarshmallowPlugin, as /openapi.json's do.

One channel per event type: its address is the routing key, its AMQP binding
names the producer's topic exchange. A message's payload is the envelope with
`event_type`, `producer` and `schema_version` pinned and `data` the event's
own schema. JSON Schema here is the 2020-12 / OpenAPI 3.1 dialect apispec
writes for 3.1 (a nullable field is `type: [string, "null"]`), which AsyncAPI's
schema format (a superset of JSON Schema draft 07) reads the same way.
"""

import importlib
from pathlib import Path

import yaml
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_cls

from crm_common import version
from crm_common.config import SERVICES
from crm_common.envelope import SCHEMA_VERSION, EnvelopeSchema

ASYNCAPI_VERSION = "3.0.0"
AMQP_BINDING_VERSION = "0.3.0"
DOCUMENT_PATH = Path("docs") / "asyncapi.yaml"
ENVELOPE = "Envelope"
DESCRIPTION = """\
Every event the CRM's services publish on RabbitMQ. Each service publishes to
its own durable topic exchange `<service>.events` (customers, pipeline,
interactions, reports) with the event type as routing key, persistent
(delivery mode 2), with publisher confirms, as JSON (`application/json`,
UTF-8).

Every body is one envelope: `event_id` (a UUID; delivery is at least once, so
de-duplicate on it), `event_type`, `schema_version` (bumped on a breaking
change only; fields are only ever added within a version, so ignore the ones
you do not know), `occurred_at`, `producer`, `aggregate_id`, `sequence`
(strictly increasing per aggregate: keep the highest you applied and skip an
older one arriving late) and `data`, the event's own fields.

To subscribe, declare a durable queue of your own (a name no one else uses,
such as `billing.customer-events`), bind it to the exchange once per routing
key you want (`#` takes all of an exchange's events), and acknowledge a
message after handling it; several consumers of one queue share its messages.
The broker keeps only what arrives after the queue is bound: for the history
before that, read the producer's log over Nameko RPC, `events_since(cursor,
limit)` on the service of the exchange's name, which answers the same
envelopes in log order with a `next_cursor` (an event that commits late
still comes after every cursor given out). Any AMQP client can call it:
publish `{"args": [cursor, limit], "kwargs": {}}` as JSON to the topic
exchange `nameko-rpc` with routing key `<service>.events_since`, a
`correlation_id`, and `reply_to` naming the routing key of a reply queue of
yours bound to `nameko-rpc`; the reply is `{"result": ..., "error": null}`.
examples/subscriber.py in the repository does all of this with kombu alone.
"""


def event_catalogs():
    """{service: {event_type: data schema}}, from each service's `events.py`."""
    return {
        service: importlib.import_module(f"services.{service}.events").CATALOG
        for service in SERVICES
    }


def exchange_of(service):
    return f"{service}.events"


def document():
    """The AsyncAPI document (a dict) of every event of every service."""
    plugin = MarshmallowPlugin(schema_name_resolver=schema_name)
    # OpenAPI 3.1's schema objects are plain JSON Schema: what AsyncAPI's payloads take.
    spec = APISpec(title="events", version="0", openapi_version="3.1.0", plugins=[plugin])
    spec.components.schema(ENVELOPE, schema=EnvelopeSchema)
    channels, operations, messages = {}, {}, {}
    for service, catalog in event_catalogs().items():
        for event_type, data_schema in catalog.items():
            data_name = schema_name(data_schema)
            if data_name not in spec.components.schemas:
                spec.components.schema(data_name, schema=type(data_schema))
            messages[event_type] = message(service, event_type, data_name)
            channels[event_type] = channel(service, event_type)
            operations[f"publish_{event_type}"] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{event_type}"},
                "summary": f"{service} publishes {event_type}.",
                "bindings": {"amqp": {"deliveryMode": 2, "bindingVersion": AMQP_BINDING_VERSION}},
                "messages": [{"$ref": f"#/channels/{event_type}/messages/{event_type}"}],
            }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "CRM events",
            "version": version(),
            "description": DESCRIPTION,
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:5672",
                "pathname": "/",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": "The broker of `make run`; elsewhere the one CRM_AMQP_URI names "
                "(its vhost is the path).",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": open_for_additions(spec.to_dict()["components"]["schemas"]),
            "messages": messages,
        },
    }


def channel(service, event_type):
    exchange = exchange_of(service)
    return {
        "address": event_type,
        "title": f"{exchange} / {event_type}",
        "description": f"Routing key `{event_type}` on the topic exchange `{exchange}`: "
        f"bind a durable queue of yours to `{exchange}` with this routing key to receive it.",
        "messages": {event_type: {"$ref": f"#/components/messages/{event_type}"}},
        "bindings": {
            "amqp": {
                "is": "routingKey",
                "exchange": {
                    "name": exchange,
                    "type": "topic",
                    "durable": True,
                    "autoDelete": False,
                    "vhost": "/",
                },
                "bindingVersion": AMQP_BINDING_VERSION,
            }
        },
    }


def message(service, event_type, data_name):
    return {
        "name": event_type,
        "title": event_type,
        "summary": f"`{event_type}` from {service}, schema_version {SCHEMA_VERSION}.",
        "contentType": "application/json",
        "payload": {
            "allOf": [
                {"$ref": f"#/components/schemas/{ENVELOPE}"},
                {
                    "type": "object",
                    "properties": {
                        "event_type": {"const": event_type},
                        "producer": {"const": service},
                        "schema_version": {"const": SCHEMA_VERSION},
                        "data": {"$ref": f"#/components/schemas/{data_name}"},
                    },
                },
            ]
        },
        "bindings": {
            "amqp": {
                "contentEncoding": "utf-8",
                "messageType": event_type,
                "bindingVersion": AMQP_BINDING_VERSION,
            }
        },
    }


def open_for_additions(schemas):
    """Without apispec's `additionalProperties: false` (marshmallow's RAISE, the producers' check).

    Fields are added within a schema_version: a subscriber that validates with this document
    must keep taking events from a newer producer.
    """
    return {
        name: {key: value for key, value in schema.items() if key != "additionalProperties"}
        if schema.get("additionalProperties") is False
        else schema
        for name, schema in schemas.items()
    }


def schema_name(schema):
    return resolve_schema_cls(schema).__name__


class _Dumper(yaml.SafeDumper):
    """Multi-line text as a literal block, so the descriptions read as written."""


_Dumper.add_representer(
    str,
    lambda dumper, text: dumper.represent_scalar(
        "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None
    ),
)


def as_yaml(found):
    header = "# Generated by `crm asyncapi` from the schemas in code: do not edit by hand.\n"
    return header + yaml.dump(found, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def write(path=DOCUMENT_PATH):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(as_yaml(document()))
    return path


def is_current(path=DOCUMENT_PATH):
    path = Path(path)
    return path.exists() and path.read_text() == as_yaml(document())
