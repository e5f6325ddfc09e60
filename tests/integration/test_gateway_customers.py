"""/api/v1/customers over HTTP: every endpoint, and the files and bodies clients get wrong."""

import csv
import io
import json
import os

import pytest

from tests.support.http import assert_error
from tests.support.waiting import wait_for

BASE = "/api/v1/customers"


def create(client, **fields):
    response = client.post(BASE, {"name": "Ada Lovelace", **fields})
    assert response.status_code == 201, response.text
    return response.json()


def names(response):
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]


def test_patch_changes_only_the_fields_sent(client):
    ada = create(client, email="ada@x.io", tags=["vip"])
    patched = client.request(
        "PATCH", f"{BASE}/{ada['id']}", json={"status": "customer", "tags": ["vip", "math"]}
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["status"], body["tags"], body["email"], body["version"]) == (
        "customer",
        ["vip", "math"],
        "ada@x.io",
        2,
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": None}, "name"),
        ({"name": ""}, "name"),
        ({"status": "vip"}, "status"),
        ({"email": "nope"}, "email"),
        ({"colour": "red"}, "colour"),
        ({"tags": [1]}, "tags"),
    ],
)
def test_bad_patches_are_400_naming_the_field(client, body, field):
    ada = create(client)
    error = assert_error(
        client.request("PATCH", f"{BASE}/{ada['id']}", json=body), 400, "VALIDATION_ERROR"
    )
    assert field in error["fields"]


def test_patch_into_a_duplicate_is_409_unless_allowed(client):
    ada = create(client, email="ada@x.io")
    grace = create(client, name="Grace Hopper")
    conflict = client.request("PATCH", f"{BASE}/{grace['id']}", json={"email": "ADA@x.io"})
    assert assert_error(conflict, 409, "CONFLICT")["existing_id"] == ada["id"]
    allowed = client.request(
        "PATCH", f"{BASE}/{grace['id']}?allow_duplicate=true", json={"email": "ada@x.io"}
    )
    assert allowed.status_code == 200


def test_search_and_filters(client):
    create(client, name="Zoë Núñez", company="Acme", tags=["vip"])
    create(client, name="Nuno Silva", company="Acme Labs", status="customer", owner="kim")
    assert names(client.get(f"{BASE}?q=zoe%20nunez")) == ["Zoë Núñez"]
    assert names(client.get(f"{BASE}?q=ACME")) == ["Zoë Núñez", "Nuno Silva"]
    assert names(client.get(f"{BASE}?q=acme&owner=kim")) == ["Nuno Silva"]
    assert names(client.get(f"{BASE}?tag=VIP")) == ["Zoë Núñez"]
    assert names(client.get(f"{BASE}?segment=high_value")) == []
    assert_error(client.get(f"{BASE}?q="), 400, "VALIDATION_ERROR")
    assert_error(client.get(f"{BASE}?q=" + "x" * 201), 400, "VALIDATION_ERROR")


def test_delete_erases_and_a_second_delete_is_422(client):
    ada = create(client, email="ada@x.io", phone="+442079460958")
    erased = client.request("DELETE", f"{BASE}/{ada['id']}")
    assert erased.status_code == 200
    assert (erased.json()["erased"], erased.json()["email"]) == (True, None)
    assert_error(client.request("DELETE", f"{BASE}/{ada['id']}"), 422, "INVALID_TRANSITION")
    assert_error(
        client.request("PATCH", f"{BASE}/{ada['id']}", json={"name": "X"}),
        422,
        "INVALID_TRANSITION",
    )
    data = client.get(f"{BASE}/{ada['id']}/data").json()
    assert "ada@x.io" not in json.dumps(data)
    assert [event["event_type"] for event in data["events"]] == [
        "customer_created",
        "customer_erased",
    ]
    assert_error(
        client.request("DELETE", f"{BASE}/00000000-0000-4000-8000-000000000000"), 404, "NOT_FOUND"
    )


def test_duplicates_and_merge(client):
    ada = create(client, company="Engines", email="ada@x.io")
    twin = client.post(
        f"{BASE}?allow_duplicate=true", {"name": "Lovelace Ada", "company": "Engines Ltd"}
    ).json()
    pairs = client.get(f"{BASE}/duplicates").json()["items"]
    assert [{c["id"] for c in pair["customers"]} for pair in pairs] == [{ada["id"], twin["id"]}]

    merged = client.post(f"{BASE}/{ada['id']}/merge", {"merge_ids": [twin["id"].upper()]})
    assert merged.status_code == 200, merged.text
    assert merged.json()["merged_ids"] == [twin["id"]]
    assert client.get(f"{BASE}/{twin['id']}").json()["resolved_from"] == twin["id"]
    assert client.get(f"{BASE}/duplicates").json()["items"] == []


def test_deals_and_interactions_listed_by_a_merged_id_are_the_survivors(client):
    ada = create(client)
    twin = create(client, name="A. Lovelace", email="twin@x.io")
    deal = client.post(
        "/api/v1/deals",
        {"customer_id": twin["id"], "title": "Engine", "amount": "10", "currency": "GBP"},
    ).json()
    note = client.post("/api/v1/interactions", {"customer_id": twin["id"], "channel": "note"})
    assert note.status_code == 201, note.text
    merged = client.post(f"{BASE}/{ada['id']}/merge", {"merge_ids": [twin["id"]]})
    assert merged.status_code == 200, merged.text

    def listed(path):
        items = client.get(f"{path}?customer_id={twin['id']}").json()["items"]
        return [(item["id"], item["customer_id"]) for item in items]

    wait_for(
        lambda: (
            listed("/api/v1/deals") == [(deal["id"], ada["id"])]
            and listed("/api/v1/interactions") == [(note.json()["id"], ada["id"])]
        ),
        message="both lists to follow the merge",
    )


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"merge_ids": []}, 400, "VALIDATION_ERROR"),
        ({"merge_ids": ["nope"]}, 400, "VALIDATION_ERROR"),
        ({}, 400, "VALIDATION_ERROR"),
        ({"merge_ids": ["00000000-0000-4000-8000-000000000000"]}, 404, "NOT_FOUND"),
        ("self", 400, "VALIDATION_ERROR"),
    ],
)
def test_bad_merges(client, body, status, code):
    ada = create(client)
    if body == "self":
        body = {"merge_ids": [ada["id"]]}
    assert_error(client.post(f"{BASE}/{ada['id']}/merge", body), status, code)


CSV_HEADERS = {"Content-Type": "text/csv"}


def upload(client, data, headers=CSV_HEADERS, query=""):
    return client.request("POST", f"{BASE}/import{query}", data=data, headers=headers)


def test_import_a_csv_body_then_export_it(client):
    text = (
        "\ufeffName,Email,Tags\r\n"
        "Ada Lovelace,ada@x.io,vip;math\r\n"
        "Grace Hopper,grace@navy.mil,\r\n"
        "Bad,not-an-email,\r\n"
    )
    result = upload(client, text.encode())
    assert result.status_code == 200, result.text
    body = result.json()
    assert (body["created"], body["rejected"]) == (2, 1)
    assert body["rejected_rows"][0]["line"] == 4
    exported = client.get(f"{BASE}/export?q=ada")
    assert exported.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in exported.headers["Content-Disposition"]
    [row] = list(csv.DictReader(io.StringIO(exported.text)))
    assert (row["name"], row["email"], row["tags"]) == ("Ada Lovelace", "ada@x.io", "vip;math")


def test_import_a_multipart_upload_with_a_mapping(client):
    files = {"file": ("people.csv", b"Full name,E-mail\nAda Lovelace,ada@x.io\n", "text/csv")}
    form = {"mapping": json.dumps({"Full name": "name", "E-mail": "email"})}
    response = client.request("POST", f"{BASE}/import", files=files, data=form)
    assert response.status_code == 200, response.text
    assert response.json()["created"] == 1
    assert names(client.get(BASE)) == ["Ada Lovelace"]


@pytest.mark.parametrize(
    ("data", "headers", "query", "status", "code"),
    [
        (
            "name\nAda\n".encode("utf-16"),
            CSV_HEADERS,
            "",
            400,
            "VALIDATION_ERROR",
        ),  # wrong encoding
        (b"name;email\xff\nAda\n", CSV_HEADERS, "", 400, "VALIDATION_ERROR"),
        (b"", CSV_HEADERS, "", 400, "VALIDATION_ERROR"),  # no header
        (b"colour,size\nred,9\n", CSV_HEADERS, "", 400, "VALIDATION_ERROR"),  # no name column
        (b'name\n"Ada\n', CSV_HEADERS, "", 400, "VALIDATION_ERROR"),  # broken quoting
        (b"name\nAda\n", {"Content-Type": "application/json"}, "", 415, "UNSUPPORTED_MEDIA_TYPE"),
        (b"name\nAda\n", CSV_HEADERS, "?mapping=nope", 400, "VALIDATION_ERROR"),
        (b"name\nAda\n", CSV_HEADERS, '?mapping={"name":"nickname"}', 400, "VALIDATION_ERROR"),
        (b"name\nAda\n", CSV_HEADERS, "?allow_duplicates=maybe", 400, "VALIDATION_ERROR"),
    ],
)
def test_a_bad_file_is_a_4xx_and_writes_nothing(client, data, headers, query, status, code):
    assert_error(upload(client, data, headers, query), status, code)
    assert client.get(BASE).json()["items"] == []


def test_ten_megabytes_of_junk_is_refused_and_writes_nothing(client):
    junk = os.urandom(10 * 1024 * 1024)
    assert_error(upload(client, junk), 400, "VALIDATION_ERROR")
    text_junk = ("name\n" + "\n".join("x" * 200 for _ in range(50000))).encode()[: 10 * 1024 * 1024]
    response = upload(client, b"\x00" + text_junk)
    assert_error(response, 400, "VALIDATION_ERROR")
    assert client.get(BASE).json()["items"] == []


def test_an_import_over_the_size_limit_is_413(client, crm_config):
    size = crm_config["CRM_MAX_IMPORT_BYTES"] + 1
    assert_error(upload(client, b"x" * size), 413, "PAYLOAD_TOO_LARGE")


def test_a_multipart_upload_without_the_file_is_400(client):
    response = client.request("POST", f"{BASE}/import", files={"other": ("a.csv", b"name\nAda\n")})
    assert "file" in assert_error(response, 400, "VALIDATION_ERROR")["fields"]


def test_customers_imported_show_up_in_the_report(client):
    upload(client, b"name,owner\nAda,sam\nGrace,sam\n")
    wait_for(
        lambda: client.get("/api/v1/reports/customers").json()["total"] == 2, message="the report"
    )


@pytest.mark.parametrize(
    "body",
    [
        '{"name": "\\ud800 X"}',  # an unpaired surrogate: no database stores it
        '{"name": "Ada", "tags": ["' + "\\u0130" * 50 + '"]}',  # twice as long once lower-cased
    ],
)
def test_text_no_column_can_hold_is_400(client, body):
    response = client.request("POST", BASE, data=body, headers={"Content-Type": "application/json"})
    assert_error(response, 400, "VALIDATION_ERROR")


def test_a_forged_duplicates_cursor_is_400(client):
    for cursor in ("%C2%B2", "WzEsIDJd", "bnVsbA"):
        assert_error(client.get(f"{BASE}/duplicates?cursor={cursor}"), 400, "VALIDATION_ERROR")


def test_a_company_whose_key_grows_when_folded_is_still_stored(client):
    response = client.request(
        "POST",
        BASE,
        data='{"name": "Ada", "company": "' + "\\u00df" * 200 + '"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text
