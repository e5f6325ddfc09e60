"""Idempotency-Key over HTTP: a POST runs once per key and token; repeats get its first answer."""

import json
import time
import uuid

import eventlet
import pytest
import redis
from nameko.rpc import rpc

from gateway.idempotency import IdempotencyStore
from gateway.service import GatewayService
from services.customers.service import CustomersService
from tests.support.http import Client, assert_error, created
from tests.support.settings import REDIS_URL

CUSTOMERS = "/api/v1/customers"


def keyed(key):
    return {"headers": {"Idempotency-Key": key}}


def customer_names(client):
    return [item["name"] for item in client.get(CUSTOMERS).json()["items"]]


def kept_records(config):
    """{redis key: (record, seconds to live)} of the idempotency records in Redis."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        pattern = f"{config['CRM_REDIS_PREFIX']}:idempotency:*"
        return {
            key: (json.loads(client.get(key)), client.ttl(key))
            for key in client.scan_iter(match=pattern)
        }
    finally:
        client.close()


def test_a_repeated_create_makes_one_customer_and_gets_the_first_answer(client, crm_config):
    first = client.post(CUSTOMERS, {"name": "Ada"}, **keyed("create-ada"))
    again = client.post(CUSTOMERS, {"name": "Ada"}, **keyed("create-ada"))
    assert created(again) == created(first)
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["X-Request-Id"] != first.headers["X-Request-Id"]
    assert customer_names(client) == ["Ada"]

    [(record, ttl)] = kept_records(crm_config).values()
    assert record["status"] == 201
    assert crm_config["CRM_IDEMPOTENCY_TTL_SECONDS"] - 60 < ttl <= 86400


def test_the_key_with_another_body_is_409_and_creates_nothing(client):
    created(client.post(CUSTOMERS, {"name": "Ada"}, **keyed("k")))
    reused = client.post(CUSTOMERS, {"name": "Grace"}, **keyed("k"))
    assert_error(reused, 409, "IDEMPOTENCY_KEY_REUSED")
    assert customer_names(client) == ["Ada"]


def test_keys_belong_to_their_token(client):
    sales = client.as_role("sales", "sam")
    admins = created(client.post(CUSTOMERS, {"name": "Ada"}, **keyed("same-key")))
    sams = created(sales.post(CUSTOMERS, {"name": "Grace"}, **keyed("same-key")))
    assert admins["id"] != sams["id"]
    assert created(sales.post(CUSTOMERS, {"name": "Grace"}, **keyed("same-key"))) == sams
    assert sorted(customer_names(client)) == ["Ada", "Grace"]


def test_a_client_error_is_kept_too(client):
    invalid = client.post(CUSTOMERS, {"name": ""}, **keyed("bad"))
    assert_error(invalid, 400, "VALIDATION_ERROR")
    again = client.post(CUSTOMERS, {"name": ""}, **keyed("bad"))
    assert again.json() == invalid.json()
    assert again.headers["Idempotent-Replayed"] == "true"


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\tkey"])
def test_a_malformed_key_is_400_and_creates_nothing(client, key):
    error = assert_error(
        client.post(CUSTOMERS, {"name": "Ada"}, **keyed(key)), 400, "VALIDATION_ERROR"
    )
    assert "Idempotency-Key" in error["fields"]
    assert customer_names(client) == []


def test_an_import_sent_again_as_a_new_form_is_replayed(client):
    def upload():
        files = {"file": ("customers.csv", b"name,email\nAda,ada@example.com\n", "text/csv")}
        return client.request("POST", f"{CUSTOMERS}/import", files=files, **keyed("import-1"))

    first, again = upload(), upload()  # requests picks a new boundary for each
    assert first.status_code == again.status_code == 200, again.text
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert customer_names(client) == ["Ada"]


def test_an_issued_token_is_never_kept_for_a_replay(client, crm_config):
    body = {"role": "viewer", "subject": "vic"}
    first = created(client.post("/api/v1/auth/tokens", body, **keyed("token-1")))
    again = client.post("/api/v1/auth/tokens", body, **keyed("token-1"))
    assert created(again)["token"] != first["token"]
    assert "Idempotent-Replayed" not in again.headers
    assert kept_records(crm_config) == {}


class StubCustomers:
    """Stands in for the customers service: each create takes its turn of `delays`."""

    name = "customers"
    delays = []
    created = []

    @rpc
    def create_customer(self, payload, allow_duplicate):
        eventlet.sleep(StubCustomers.delays.pop(0) if StubCustomers.delays else 0)
        customer = {"id": str(uuid.uuid4()), **payload}
        StubCustomers.created.append(customer)
        return customer


@pytest.fixture
def stub_gateway(crm_config, runner_factory):
    """A gateway (RPC timeout 2 s) in front of StubCustomers."""
    StubCustomers.delays, StubCustomers.created = [], []
    config = dict(crm_config, CRM_RPC_TIMEOUT=2.0)
    runner_factory(config, GatewayService, StubCustomers).start()
    return Client(f"http://{config['CRM_GATEWAY_ADDRESS']}")


def test_identical_requests_at_once_run_once(stub_gateway):
    StubCustomers.delays = [1]
    pool = eventlet.GreenPool()

    def send(_):
        own = Client(stub_gateway.base_url)
        return own.post(CUSTOMERS, {"name": "Ada"}, **keyed("at-once"))

    answers = list(pool.imap(send, range(5)))
    assert len(StubCustomers.created) == 1
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201, 409, 409, 409, 409]
    for refused in (answer for answer in answers if answer.status_code == 409):
        assert_error(refused, 409, "IDEMPOTENCY_KEY_IN_PROGRESS")
        assert refused.headers["Retry-After"] == "1"
    assert (
        created(stub_gateway.post(CUSTOMERS, {"name": "Ada"}, **keyed("at-once")))
        == (StubCustomers.created[0])
    )


def test_a_service_too_slow_is_503_at_the_timeout_and_frees_the_key(stub_gateway):
    StubCustomers.delays = [5]
    started = time.monotonic()
    late = stub_gateway.post(CUSTOMERS, {"name": "Ada"}, **keyed("slow"))
    assert_error(late, 503, "SERVICE_UNAVAILABLE")
    assert "did not answer within 2 s" in late.json()["error"]["message"]
    assert time.monotonic() - started < 4

    retried = stub_gateway.post(CUSTOMERS, {"name": "Ada"}, **keyed("slow"))
    assert created(retried)["name"] == "Ada"
    assert "Idempotent-Replayed" not in retried.headers


def test_keyed_writes_are_refused_while_redis_is_away_and_reads_go_on(
    crm_config, runner_factory, redis_proxy
):
    """The gateway reaches Redis through a proxy; the services, directly."""
    runner_factory(dict(crm_config, CRM_REDIS_URL=redis_proxy.url), GatewayService).start()
    runner_factory(crm_config, CustomersService).start()
    client = Client(f"http://{crm_config['CRM_GATEWAY_ADDRESS']}")
    assert client.get(CUSTOMERS).headers["X-RateLimit-Limit"] == "600"

    redis_proxy.cut()
    refused = client.post(CUSTOMERS, {"name": "Ada"}, **keyed("while-away"))
    assert_error(refused, 503, "SERVICE_UNAVAILABLE")
    read = client.get(CUSTOMERS)
    assert read.status_code == 200
    assert read.json()["items"] == []
    assert "X-RateLimit-Remaining" not in read.headers  # nothing could be counted
    assert created(client.post(CUSTOMERS, {"name": "Grace"}))["name"] == "Grace"

    redis_proxy.start()
    assert created(client.post(CUSTOMERS, {"name": "Ada"}, **keyed("while-away")))
    assert sorted(customer_names(client)) == ["Ada", "Grace"]


# --- the store, against Redis -------------------------------------------------------------


@pytest.fixture
def store(crm_config):
    client = redis.Redis.from_url(REDIS_URL)
    yield IdempotencyStore(client, crm_config["CRM_REDIS_PREFIX"], 3600, running_seconds=40)
    client.close()


class Answer:
    status_code = 201
    headers = [("Content-Type", "application/json"), ("Content-Length", "2")]

    def get_data(self):
        return b"{}"


def test_a_claim_holds_for_the_running_time_and_the_answer_for_the_ttl(store, crm_config):
    claim, kept = store.claim("token", "key", "request-hash")
    assert kept is None
    [(record, ttl)] = kept_records(crm_config).values()
    assert record["request"] == "request-hash" and "status" not in record
    assert 30 < ttl <= 40

    again, kept = store.claim("token", "key", "request-hash")
    assert again is None and json.loads(kept) == record

    store.keep(claim, Answer())
    [(record, ttl)] = kept_records(crm_config).values()
    assert record["status"] == 201
    assert record["headers"] == [["Content-Type", "application/json"]]
    assert 3500 < ttl <= 3600


def test_a_claim_that_expired_and_was_taken_again_is_not_settled_by_its_first_owner(
    store, crm_config
):
    stale, _ = store.claim("token", "key", "request-hash")
    with redis.Redis.from_url(REDIS_URL) as other:
        other.delete(stale.redis_key)  # as if it had expired
    current, _ = store.claim("token", "key", "request-hash")

    store.release(stale)
    store.keep(stale, Answer())
    [(record, _)] = kept_records(crm_config).values()
    assert record == json.loads(current.record)
