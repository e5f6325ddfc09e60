from datetime import UTC, datetime

import pytest
from marshmallow import ValidationError

from crm_common import cursors
from services.customers import domain
from services.customers.schemas import CustomerInput


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("+1 (555) 010-2000", "+15550102000"),
        ("+15550102000", "+15550102000"),
        ("0044 20 7946 0958", "+442079460958"),
        ("020.7946.0958", "02079460958"),
        ("12345", None),  # too short to be a number
        ("+1 555 CALL NOW", None),
        ("1234567890123456", None),  # longer than E.164 allows
        (None, None),
    ],
)
def test_phone_numbers_normalize_to_digits(raw, normalized):
    assert domain.normalize_phone(raw) == normalized


def test_emails_compare_case_insensitively():
    assert domain.normalize_email("  Ada@Example.COM ") == "ada@example.com"
    assert domain.normalize_email("   ") is None


def test_tags_are_lowercased_and_unique_in_first_seen_order():
    assert domain.normalize_tags(["VIP", " vip ", "Math", "", "  "]) == ["vip", "math"]


def test_cursor_round_trips_and_rejects_forgeries():
    created_at = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
    customer_id = "0b5c3d0e-8f7a-4c2e-9d1b-2a3f4e5d6c7b"
    cursor = cursors.encode_position(created_at, customer_id)
    assert cursors.decode_position(cursor) == (created_at, customer_id)
    forged_id = cursors.encode_position(created_at, "not\x00an-id")
    naive = cursors.pack(["2026-01-31T12:00:00", customer_id])
    for forged in ("forged", "WzEsIDJd", "bnVsbA", forged_id, naive):
        with pytest.raises(ValueError):
            cursors.decode_position(forged)


def test_input_is_normalized_on_load():
    data = CustomerInput().load(
        {
            "name": " Ada   Lovelace ",
            "email": " ADA@example.com ",
            "phone": "+44 20 7946 0958",
            "company": " Analytical  Engines ",
            "tags": ["VIP", "vip"],
        }
    )
    assert data == {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "phone": "+442079460958",
        "company": "Analytical Engines",
        "owner": None,
        "status": "lead",
        "tags": ["vip"],
        "attributes": {},
    }


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "Ada", "email": "ada"}, "email"),
        ({"name": "Ada", "phone": "555"}, "phone"),
        ({"name": "Ada", "status": "vip"}, "status"),
        ({"name": "Ada", "tags": ["x" * 51]}, "tags"),
        ({"name": "Ada", "tags": ["t"] * 51}, "tags"),
        ({"name": "Ada", "attributes": {"nested": {"a": 1}}}, "attributes"),
        ({"name": "Ada", "attributes": {"long": "x" * 1001}}, "attributes"),
        ({"name": "Ada", "attributes": {f"k{n}": n for n in range(51)}}, "attributes"),
        ({"name": "Ada", "attributes": {"k" * 65: 1}}, "attributes"),
        ({"name": "Ada", "colour": "red"}, "colour"),
        ({"name": "Ada\x00"}, "name"),
        ({"name": "Ada", "tags": ["v\x00ip"]}, "tags"),
        ({"name": "Ada", "attributes": {"a": float("nan")}}, "attributes"),
        ({"name": "Ada", "attributes": {"a": float("inf")}}, "attributes"),
        # 200 characters that NFC turns into 400: the stored length is what counts
        ({"name": "\u0958" * 200}, "name"),
        ({"name": "Ada", "email": "i" + "\u0130" * 300 + "@example.com"}, "email"),
    ],
)
def test_invalid_input_names_the_field(payload, field):
    with pytest.raises(ValidationError) as caught:
        CustomerInput().load(payload)
    assert field in caught.value.messages


def test_attributes_accept_scalars_of_every_kind():
    attributes = {"tier": "gold", "seats": 12, "ratio": 0.5, "active": True, "note": None}
    assert (
        CustomerInput().load({"name": "Ada", "attributes": attributes})["attributes"] == attributes
    )
