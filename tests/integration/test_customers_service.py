"""The customers service over RPC and events, on real RabbitMQ, SQLite and PostgreSQL."""

import csv
import io

import pytest
from kombu import Connection, Exchange, Producer
from nameko.standalone.rpc import ClusterRpcProxy

from crm_common.envelope import make_envelope
from services.customers.service import CustomersService
from services.reports.service import ReportsService
from tests.support.waiting import wait_for

pytestmark = pytest.mark.parametrize("db_kind", ["sqlite", "postgres"])


@pytest.fixture
def rpc(crm_config, runner_factory):
    runner_factory(crm_config, CustomersService, ReportsService).start()
    with ClusterRpcProxy(crm_config) as proxy:
        yield proxy


def events(rpc, aggregate_id=None):
    found = rpc.customers.events_since(None, 1000)["events"]
    return [e for e in found if aggregate_id in (None, e["aggregate_id"])]


def error_of(call):
    """The message of the error a call raises (a RemoteError, or the gateway's mapping of it)."""
    try:
        call()
    except Exception as exc:
        return getattr(exc, "value", None) or str(exc)
    raise AssertionError("expected the call to fail")


def names(page):
    return [item["name"] for item in page["items"]]


def test_update_emits_the_changed_fields_and_the_report_follows(rpc):
    ada = rpc.customers.create_customer({"name": "Ada", "owner": "sam"})
    updated = rpc.customers.update_customer(
        ada["id"], {"status": "customer", "owner": "kim", "name": "Ada"}
    )
    assert (updated["status"], updated["owner"], updated["version"]) == ("customer", "kim", 2)
    [_, event] = events(rpc, ada["id"])
    assert event["event_type"] == "customer_updated"
    assert event["sequence"] == 2
    assert event["data"]["changes"] == {"status": ["lead", "customer"], "owner": ["sam", "kim"]}
    wait_for(
        lambda: (
            rpc.reports.customers_by_status_owner()["items"]
            == [{"status": "customer", "owner": "kim", "customers": 1}]
        ),
        message="the report to follow the update",
    )
    # No change, no event.
    rpc.customers.update_customer(ada["id"], {"status": "customer"})
    assert len(events(rpc, ada["id"])) == 2


def test_search_ignores_case_and_accents_and_combines_with_filters(rpc):
    rpc.customers.create_customer(
        {"name": "Zoë Núñez", "company": "Acme", "tags": ["VIP"], "owner": "sam"}
    )
    rpc.customers.create_customer(
        {"name": "Zoe Smith", "email": "zsmith@globex.com", "phone": "+1 555 010 2000"}
    )
    rpc.customers.create_customer(
        {"name": "Nuno Silva", "company": "Acme Labs", "status": "customer"}
    )

    assert names(rpc.customers.list_customers({"q": "zoe"})) == ["Zoë Núñez", "Zoe Smith"]
    assert names(rpc.customers.list_customers({"q": "NUNEZ zo"})) == ["Zoë Núñez"]
    assert names(rpc.customers.list_customers({"q": "globex"})) == ["Zoe Smith"]
    assert names(rpc.customers.list_customers({"q": "555 010"})) == ["Zoe Smith"]
    assert names(rpc.customers.list_customers({"q": "acme"})) == ["Zoë Núñez", "Nuno Silva"]
    assert names(rpc.customers.list_customers({"q": "acme", "status": "customer"})) == [
        "Nuno Silva"
    ]
    assert names(rpc.customers.list_customers({"tag": "vip"})) == ["Zoë Núñez"]
    assert names(rpc.customers.list_customers({"q": "nobody"})) == []


def test_likely_duplicates_are_refused_and_found_by_a_scan(rpc):
    ada = rpc.customers.create_customer(
        {"name": "Ada Lovelace", "company": "Engines Ltd", "phone": "+44 20 7946 0958"}
    )
    refused = error_of(
        lambda: rpc.customers.create_customer({"name": "Lovelace, Ada", "company": "ENGINES"})
    )
    assert ada["id"] in str(refused) and "name+company" in str(refused)
    by_phone = error_of(
        lambda: rpc.customers.create_customer({"name": "A. King", "phone": "+442079460958"})
    )
    assert "phone" in str(by_phone)
    twin = rpc.customers.create_customer({"name": "Ada Lovelase", "company": "Engines"}, True)
    rpc.customers.create_customer({"name": "Grace Hopper", "company": "Engines"})

    page = rpc.customers.find_duplicates({})
    [pair] = page["items"]
    assert {customer["id"] for customer in pair["customers"]} == {ada["id"], twin["id"]}
    assert pair["matched"] == ["name+company"]
    assert pair["score"] >= 0.8
    assert page["next_cursor"] is None


def test_merge_folds_customers_into_the_survivor(rpc):
    ada = rpc.customers.create_customer(
        {"name": "Ada Lovelace", "email": "ada@x.io", "tags": ["vip"]}
    )
    other = rpc.customers.create_customer(
        {"name": "A. Lovelace", "phone": "+442079460958", "company": "Engines", "tags": ["math"]}
    )
    third = rpc.customers.create_customer({"name": "Countess", "owner": "sam"})
    merged = rpc.customers.merge_customers(
        ada["id"], {"merge_ids": [other["id"], third["id"]]}, "admin"
    )
    assert merged["id"] == ada["id"]
    assert (merged["phone"], merged["company"], merged["owner"]) == (
        "+442079460958",
        "Engines",
        "sam",
    )
    assert merged["tags"] == ["vip", "math"]
    assert merged["merged_ids"] == [other["id"], third["id"]]

    assert names(rpc.customers.list_customers({})) == ["Ada Lovelace"]
    assert names(rpc.customers.list_customers({"q": "countess"})) == []
    resolved = rpc.customers.get_customer(other["id"])
    assert (resolved["id"], resolved["resolved_from"]) == (ada["id"], other["id"])

    [event] = [e for e in events(rpc, ada["id"]) if e["event_type"] == "customer_merged"]
    assert event["data"]["survivor_id"] == ada["id"]
    assert event["data"]["merged_ids"] == [other["id"], third["id"]]
    assert event["data"]["changes"]["phone"] == [None, "+442079460958"]
    history = rpc.customers.customer_data(ada["id"])["merges"]
    assert [(m["merged_id"], m["merged_by"]) for m in history] == [
        (other["id"], "admin"),
        (third["id"], "admin"),
    ]
    assert history[0]["snapshot"]["name"] == "A. Lovelace"

    again = error_of(lambda: rpc.customers.merge_customers(ada["id"], {"merge_ids": [other["id"]]}))
    assert "merged into" in str(again)
    wait_for(
        lambda: rpc.reports.customers_by_status_owner()["total"] == 1,
        message="merged ones leave the report",
    )


def test_resolve_customer_tells_other_services_where_records_belong(rpc):
    ada = rpc.customers.create_customer({"name": "Ada Lovelace"})
    twin = rpc.customers.create_customer({"name": "Ada L."}, True)
    gone = rpc.customers.create_customer({"name": "Gone Person"})
    rpc.customers.merge_customers(ada["id"], {"merge_ids": [twin["id"]]}, "admin")
    rpc.customers.erase_customer(gone["id"])
    assert rpc.customers.resolve_customer(ada["id"]) == {"id": ada["id"], "state": "active"}
    assert rpc.customers.resolve_customer(twin["id"]) == {"id": ada["id"], "state": "active"}
    assert rpc.customers.resolve_customer(gone["id"]) == {"id": gone["id"], "state": "erased"}
    for unknown in ("5bd0c5c5-6f5c-4ef4-9d61-3a4a3d3a0a0a", "not-an-id", None, 7):
        assert rpc.customers.resolve_customer(unknown) == {"id": None, "state": "missing"}


@pytest.mark.parametrize(
    "payload",
    [
        {"merge_ids": []},
        {"merge_ids": ["not-a-uuid"]},
        {"merge_ids": "x"},
        {},
        {"merge_ids": [None]},
    ],
)
def test_merge_refuses_a_malformed_request(rpc, payload):
    ada = rpc.customers.create_customer({"name": "Ada"})
    assert "Invalid customer data" in error_of(
        lambda: rpc.customers.merge_customers(ada["id"], payload)
    )


def test_erasure_keeps_an_anonymous_record_and_scrubs_the_event_log(rpc):
    ada = rpc.customers.create_customer(
        {
            "name": "Ada Lovelace",
            "email": "ada@x.io",
            "phone": "+442079460958",
            "tags": ["vip"],
            "attributes": {"note": "likes engines"},
            "owner": "sam",
            "status": "customer",
        }
    )
    rpc.customers.update_customer(ada["id"], {"email": "countess@x.io"})
    erased = rpc.customers.erase_customer(ada["id"])
    assert erased["erased"] is True
    assert (
        erased["name"],
        erased["email"],
        erased["phone"],
        erased["tags"],
        erased["attributes"],
    ) == ("Erased customer", None, None, [], {})
    assert (erased["status"], erased["owner"]) == ("customer", "sam")  # kept for the reports

    text = str(rpc.customers.customer_data(ada["id"]))
    for personal in ("Lovelace", "ada@x.io", "countess@x.io", "2079460958", "likes engines"):
        assert personal not in text
    assert [e["event_type"] for e in events(rpc, ada["id"])] == [
        "customer_created",
        "customer_updated",
        "customer_erased",
    ]
    assert names(rpc.customers.list_customers({})) == []
    assert "erased" in str(
        error_of(lambda: rpc.customers.update_customer(ada["id"], {"name": "X"}))
    )
    assert "erased" in str(error_of(lambda: rpc.customers.erase_customer(ada["id"])))


def test_segment_changes_from_reports_file_customers_under_their_segment(rpc, crm_config):
    ada = rpc.customers.create_customer({"name": "Ada"})
    rpc.customers.create_customer({"name": "Grace"})

    def segment_changed(sequence, to_segment):
        body = make_envelope(
            event_type="segment_changed",
            producer="reports",
            aggregate_id=ada["id"],
            sequence=sequence,
            data={"customer_id": ada["id"], "from_segment": None, "to_segment": to_segment},
        )
        with Connection(crm_config["AMQP_URI"]) as connection:
            Producer(connection).publish(
                body,
                exchange=Exchange("reports.events", type="topic", durable=True),
                routing_key="segment_changed",
                serializer="json",
            )

    segment_changed(2, "at_risk")
    segment_changed(1, "high_value")  # older, arriving late: ignored
    wait_for(
        lambda: names(rpc.customers.list_customers({"segment": "at_risk"})) == ["Ada"],
        message="segment",
    )
    assert rpc.customers.get_customer(ada["id"])["segment"] == "at_risk"
    assert names(rpc.customers.list_customers({"segment": "high_value"})) == []


def rows_of(text):
    return list(csv.DictReader(io.StringIO(text)))


def test_import_creates_updates_and_reports_duplicates_and_bad_rows(rpc):
    existing = rpc.customers.create_customer(
        {"name": "Ada Lovelace", "email": "ada@x.io", "company": "Engines"}
    )
    text = (
        "\ufeffname,email,phone,company,status,tags,attributes.tier\r\n"
        "Grace Hopper,grace@navy.mil,+1 555 010 2000,Navy,customer,vip;admiral,gold\r\n"
        ",ada@x.io,,,customer,,\r\n"  # updates Ada by email
        "Lovelace Ada,,,Engines Ltd,,,\r\n"  # likely Ada: reported, not created
        "Alan Turing,alan@@x,,,,,\r\n"  # bad email
        "Joan Clarke,,12,,,,\r\n"  # bad phone
        "Grace M. Hopper,grace@navy.mil,,,,,silver\r\n"  # same email as line 2: updates it
        "Katherine Johnson,,,NASA,lead,,\r\n"
    )
    result = rpc.customers.import_customers(text, None, False)
    assert (result["created"], result["updated"], result["duplicates"], result["rejected"]) == (
        2,
        1,
        1,
        2,
    )
    assert [row["line"] for row in result["rejected_rows"]] == [5, 6]
    assert "email" in result["rejected_rows"][0]["errors"]
    assert "phone" in result["rejected_rows"][1]["errors"]
    [duplicate] = result["duplicate_rows"]
    assert (duplicate["line"], duplicate["existing_id"], duplicate["matched"]) == (
        4,
        existing["id"],
        ["name+company"],
    )

    assert rpc.customers.get_customer(existing["id"])["status"] == "customer"
    [grace] = rpc.customers.list_customers({"q": "grace"})["items"]
    assert (grace["name"], grace["phone"], grace["tags"]) == (
        "Grace M. Hopper",
        "+15550102000",
        ["vip", "admiral"],
    )
    assert grace["attributes"] == {"tier": "silver"}
    kinds = [event["event_type"] for event in events(rpc)]
    assert kinds.count("customer_created") == 3 and kinds.count("customer_updated") == 1
    wait_for(
        lambda: rpc.reports.customers_by_status_owner()["total"] == 3,
        message="imported in the report",
    )

    exported = rows_of(rpc.customers.export_customers({}))
    assert [row["name"] for row in exported] == [
        "Ada Lovelace",
        "Grace M. Hopper",
        "Katherine Johnson",
    ]
    assert exported[1]["tags"] == "vip;admiral"
    assert [row["name"] for row in rows_of(rpc.customers.export_customers({"status": "lead"}))] == [
        "Katherine Johnson"
    ]


def test_a_file_that_cannot_be_imported_writes_nothing(rpc):
    for text, says in (
        ("", "empty"),
        ("colour\nred\n", "No column"),
        ('name\n"unclosed\n', "Line 2"),
        ("name\nAda\x00\n", "NUL"),
    ):
        assert says in error_of(lambda text=text: rpc.customers.import_customers(text, None, False))
    mapped = error_of(
        lambda: rpc.customers.import_customers("a,b\n1,2\n", {"a": "nickname"}, False)
    )
    assert "not a field" in str(mapped)
    assert rpc.customers.list_customers({})["items"] == []
    assert events(rpc) == []


def test_an_imported_row_matching_nobody_can_be_let_through(rpc):
    rpc.customers.create_customer({"name": "Ada Lovelace", "company": "Engines"})
    result = rpc.customers.import_customers("name,company\nLovelace Ada,Engines\n", None, True)
    assert (result["created"], result["duplicates"]) == (1, 0)


def test_an_email_match_is_found_however_crowded_the_name_block(rpc):
    for number in range(60):  # one name block (company Acme, initials "j s") crowded
        rpc.customers.create_customer({"name": f"J{number} S{number}", "company": "Acme"}, True)
    owner = rpc.customers.create_customer({"name": "Other Person", "email": "dup@x.io"})
    refused = error_of(
        lambda: rpc.customers.create_customer(
            {"name": "Jay Sun", "company": "Acme", "email": "dup@x.io"}
        )
    )
    assert owner["id"] in refused and "email" in refused


def test_erasing_a_survivor_erases_what_was_merged_into_it(rpc):
    ada = rpc.customers.create_customer({"name": "Ada Lovelace", "email": "ada@x.io"})
    other = rpc.customers.create_customer({"name": "Countess Lovelace", "phone": "+442079460958"})
    rpc.customers.merge_customers(ada["id"], {"merge_ids": [other["id"]]})
    assert rpc.customers.get_customer(other["id"])["version"] == 2  # the survivor's
    assert [e["sequence"] for e in events(rpc, other["id"])] == [1]  # no version moved silently
    rpc.customers.erase_customer(ada["id"])
    held = str(rpc.customers.customer_data(ada["id"])) + str(
        rpc.customers.customer_data(other["id"])
    )
    for personal in ("Lovelace", "ada@x.io", "2079460958", "Countess"):
        assert personal not in held
    assert [e["event_type"] for e in events(rpc, other["id"])] == [
        "customer_created",
        "customer_erased",
    ]


def test_import_updates_move_each_version_by_one_and_add_attributes(rpc):
    people = [
        rpc.customers.create_customer(
            {"name": f"P{n}", "email": f"p{n}@x.io", "attributes": {"plan": "a"}}
        )
        for n in range(3)
    ]
    text = "email,status,attributes.region\n" + "".join(
        f"p{n}@x.io,customer,eu\n" for n in range(3)
    )
    text += "new@x.io,lead,\n"  # a new customer without a name: rejected
    result = rpc.customers.import_customers(text, None, False)
    assert (result["updated"], result["rejected"]) == (3, 1)
    for person in people:
        assert [e["sequence"] for e in events(rpc, person["id"])] == [1, 2]
        customer = rpc.customers.get_customer(person["id"])
        assert (customer["version"], customer["attributes"]) == (2, {"plan": "a", "region": "eu"})


def test_rows_repeating_an_email_complete_one_customer_and_are_counted(rpc):
    result = rpc.customers.import_customers(
        "name,email,phone\nAda,ada@x.io,\nAda L.,ada@x.io,+442079460958\n", None, False
    )
    assert (result["created"], result["folded"]) == (1, 1)
    [ada] = rpc.customers.list_customers({})["items"]
    assert (ada["name"], ada["phone"]) == ("Ada L.", "+442079460958")


def test_search_by_domain_and_by_punctuation(rpc):
    rpc.customers.create_customer({"name": "Bob", "email": "bob@mail.example.com"})
    rpc.customers.create_customer({"name": "Eve", "email": "eve@other.org"})
    assert names(rpc.customers.list_customers({"q": "example.com"})) == ["Bob"]
    assert names(rpc.customers.list_customers({"q": "example"})) == ["Bob"]
    assert names(rpc.customers.list_customers({"q": "!!!"})) == []
    assert names(rpc.customers.list_customers({"q": "@"})) == []


def test_the_duplicates_scan_pages_through_every_group_once(rpc):
    pairs = set()
    for number in range(5):  # five pairs sharing a phone each, one also sharing an email
        email = "same@x.io" if number == 0 else None
        first = rpc.customers.create_customer(
            {"name": f"First {number}", "phone": f"+4420794600{number:02d}", "email": email}
        )
        second = rpc.customers.create_customer(
            {"name": f"Second {number}", "phone": f"+4420794600{number:02d}", "email": email}, True
        )
        pairs.add(frozenset((first["id"], second["id"])))
    seen, cursor = [], None
    while True:
        page = rpc.customers.find_duplicates({"limit": 2, **({"cursor": cursor} if cursor else {})})
        seen.extend(frozenset(c["id"] for c in item["customers"]) for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen, key=sorted) == sorted(pairs, key=sorted)  # each pair once, none missed


def test_imported_customers_page_through_once_each(rpc):
    text = "name\r\n" + "".join(f"Customer {number:02}\r\n" for number in range(7))
    assert rpc.customers.import_customers(text, None, False)["created"] == 7
    seen, query = [], {"limit": 2}
    while True:
        page = rpc.customers.list_customers(query)
        seen += names(page)
        if not page["next_cursor"]:
            break
        query["cursor"] = page["next_cursor"]
    assert seen == [f"Customer {number:02}" for number in range(7)]
