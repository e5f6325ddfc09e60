"""The published event catalog (docs/asyncapi.yaml) against the schemas in code and AsyncAPI 3.0."""

import json

import pytest
from jsonschema import Draft7Validator
from marshmallow import fields
from referencing import Registry, Resource

from crm_common import asyncapi
from crm_common.envelope import SCHEMA_VERSION, EnvelopeSchema, make_envelope
from tests.support.catalog import COMMITTED, ROOT, load_document, payload_validator, resolve

# From npm's @asyncapi/specs, installed by `make setup` (docs/package.json).
SPEC_SCHEMA = ROOT / "docs/node_modules/@asyncapi/specs/schemas/3.0.0.json"


@pytest.fixture(scope="module")
def document():
    return load_document()


def test_the_committed_catalog_is_the_one_the_schemas_make_now():
    assert COMMITTED.read_text() == asyncapi.as_yaml(asyncapi.document()), (
        "docs/asyncapi.yaml is out of date: run `crm asyncapi` and commit it"
    )


def test_the_catalog_is_a_valid_asyncapi_3_document(document):
    assert SPEC_SCHEMA.exists(), "`make setup` installs @asyncapi/specs into docs/node_modules"
    schema = json.loads(SPEC_SCHEMA.read_text())
    registry = Registry().with_resource(schema["$id"], Resource.from_contents(schema)).crawl()
    errors = sorted(
        Draft7Validator(schema, registry=registry).iter_errors(document), key=lambda e: e.path
    )
    assert not errors, [f"{list(error.path)}: {error.message}" for error in errors[:5]]


def test_a_broken_document_is_refused_by_the_same_check(document):
    """The validation above can fail: a channel without its exchange binding is not AsyncAPI."""
    schema = json.loads(SPEC_SCHEMA.read_text())
    registry = Registry().with_resource(schema["$id"], Resource.from_contents(schema)).crawl()
    broken = json.loads(json.dumps(document))
    del broken["channels"]["deal_won"]["bindings"]["amqp"]["exchange"]
    broken["operations"]["publish_deal_won"]["action"] = "publish"
    assert len(list(Draft7Validator(schema, registry=registry).iter_errors(broken))) >= 2


def test_every_event_of_every_service_is_a_channel_on_its_exchange_and_nothing_else(document):
    expected = {
        event_type: f"{service}.events"
        for service, catalog in asyncapi.event_catalogs().items()
        for event_type in catalog
    }
    channels = {
        name: channel["bindings"]["amqp"]["exchange"]["name"]
        for name, channel in document["channels"].items()
    }
    assert channels == expected
    for name, channel in document["channels"].items():
        assert channel["address"] == name  # the routing key is the event type
        assert channel["bindings"]["amqp"]["exchange"]["type"] == "topic"
        assert channel["bindings"]["amqp"]["exchange"]["durable"] is True
    assert {op["channel"]["$ref"] for op in document["operations"].values()} == {
        f"#/channels/{name}" for name in expected
    }


def test_each_payload_is_the_envelope_with_the_events_own_data_schema(document):
    for service, catalog in asyncapi.event_catalogs().items():
        for event_type, data_schema in catalog.items():
            message = resolve(
                document, document["channels"][event_type]["messages"][event_type]["$ref"]
            )
            envelope_ref, pinned = message["payload"]["allOf"]
            assert (
                resolve(document, envelope_ref["$ref"])
                == document["components"]["schemas"]["Envelope"]
            )
            assert pinned["properties"]["event_type"] == {"const": event_type}
            assert pinned["properties"]["producer"] == {"const": service}
            assert pinned["properties"]["schema_version"] == {"const": SCHEMA_VERSION}
            assert_same_fields(document, pinned["properties"]["data"], data_schema)
    assert_same_fields(document, {"$ref": "#/components/schemas/Envelope"}, EnvelopeSchema())


def assert_same_fields(document, json_schema, schema):
    """Both ways: no field missing or extra, required, nullable and type as marshmallow says."""
    if "$ref" in json_schema:
        json_schema = resolve(document, json_schema["$ref"])
    where = type(schema).__name__
    assert set(json_schema["properties"]) == set(schema.fields), where
    assert set(json_schema.get("required", ())) == {
        name for name, field in schema.fields.items() if field.required
    }, where
    for name, field in schema.fields.items():
        described = json_schema["properties"][name]
        if "$ref" in described:
            assert isinstance(field, fields.Nested), f"{where}.{name}"
            assert_same_fields(document, described, field.schema)
            continue
        types = described.get("type")
        types = set(types) if isinstance(types, list) else {types}
        assert ("null" in types) == field.allow_none, f"{where}.{name} nullable"
        assert types - {"null"} == json_types(field), f"{where}.{name} type"
        if isinstance(field, fields.List) and isinstance(field.inner, fields.Nested):
            assert_same_fields(document, described["items"], field.inner.schema)


def json_types(field):
    for kind, names in (
        ((fields.Boolean,), {"boolean"}),
        ((fields.Integer,), {"integer"}),
        ((fields.Float, fields.Decimal), {"number"}),
        ((fields.List,), {"array"}),
        ((fields.Dict, fields.Nested), {"object"}),
        ((fields.String, fields.UUID, fields.DateTime), {"string"}),
        ((fields.Raw,), {None}),
    ):
        if isinstance(field, kind):
            return names
    raise AssertionError(f"no JSON type known for {field!r}")


def test_an_event_the_producer_accepts_passes_the_documents_payload_schema(document):
    """The document and the producer's own check agree on a real envelope."""
    data = {"customer_id": "c-1", "from_segment": None, "to_segment": "potential"}
    body = make_envelope(
        event_type="segment_changed",
        producer="reports",
        aggregate_id="c-1",
        sequence=3,
        data=data,
        data_schema=asyncapi.event_catalogs()["reports"]["segment_changed"],
    )
    validator = payload_validator(document, "segment_changed")
    assert not list(validator.iter_errors(body))
    assert list(validator.iter_errors({**body, "data": {**data, "to_segment": 7}}))
    assert list(validator.iter_errors({**body, "producer": "customers"}))
    assert not list(validator.iter_errors({**body, "data": {**data, "added_later": 1}}))
    assert list(
        payload_validator(document, "segment_changed", closed=True).iter_errors(
            {**body, "data": {**data, "added_later": 1}}
        )
    )
