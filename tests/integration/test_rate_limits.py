"""Rate limits per token over HTTP, and the sliding window they are counted in, in Redis."""

import pytest
import redis

from gateway.rate_limit import RateLimiter
from tests.support.fakes import FakeClock
from tests.support.http import assert_error
from tests.support.settings import REDIS_URL

LIMIT = 5
CUSTOMERS = "/api/v1/customers"


@pytest.fixture
def crm_config(crm_config):
    return dict(crm_config, CRM_RATE_LIMIT_PER_MINUTE=LIMIT)


def test_a_token_over_its_limit_is_429_until_its_requests_leave_the_window(client):
    viewer = client.as_role("viewer")  # the admin's first request
    answers = [client.get(CUSTOMERS) for _ in range(LIMIT - 1)]
    assert [answer.status_code for answer in answers] == [200] * (LIMIT - 1)
    assert {answer.headers["X-RateLimit-Limit"] for answer in answers} == {str(LIMIT)}
    assert [int(answer.headers["X-RateLimit-Remaining"]) for answer in answers] == [3, 2, 1, 0]
    assert all(0 < int(answer.headers["X-RateLimit-Reset"]) <= 60 for answer in answers)

    refused = client.post(CUSTOMERS, {"name": "Ada"})
    assert_error(refused, 429, "RATE_LIMITED")
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["X-RateLimit-Limit"] == str(LIMIT)
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    # As the document says a refusal answers (/openapi.json is not counted).
    documented = client.get("/openapi.json").json()["components"]["responses"]["RateLimited"]
    required = {name for name, header in documented["headers"].items() if header.get("required")}
    assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= required
    assert required <= refused.headers.keys()
    assert_error(client.get(CUSTOMERS), 429, "RATE_LIMITED")
    assert viewer.get(CUSTOMERS).json()["items"] == [], "the refused create ran"


def test_each_token_has_a_limit_of_its_own(client):
    viewer = client.as_role("viewer")  # one of the admin's requests
    for _ in range(LIMIT - 1):
        assert client.get(CUSTOMERS).status_code == 200
    assert_error(client.get(CUSTOMERS), 429, "RATE_LIMITED")
    answer = viewer.get(CUSTOMERS)
    assert answer.status_code == 200
    assert answer.headers["X-RateLimit-Remaining"] == str(LIMIT - 1)


def test_health_ready_and_unauthenticated_calls_are_not_counted(client):
    for _ in range(LIMIT + 1):
        health = client.get("/health")
        assert health.status_code == 200
        assert client.get("/ready").status_code == 200
        assert_error(client.get(CUSTOMERS, auth=False), 401, "UNAUTHORIZED")
        unknown = {"Authorization": "Bearer crm_unknown_0123456789"}
        assert_error(client.get(CUSTOMERS, headers=unknown), 401, "UNAUTHORIZED")
    assert "X-RateLimit-Limit" not in health.headers
    assert client.get(CUSTOMERS).headers["X-RateLimit-Remaining"] == str(LIMIT - 1)


# --- the window, against Redis ------------------------------------------------------------


@pytest.fixture
def limiter(crm_config):
    client = redis.Redis.from_url(REDIS_URL)
    limiter = RateLimiter(client, crm_config["CRM_REDIS_PREFIX"], 3, clock=FakeClock(1000.0))
    yield limiter
    client.close()


def count_at(limiter, now, scope="token"):
    limiter.clock.now = now
    return limiter.count(scope)


def test_any_60_seconds_hold_at_most_the_limit(limiter):
    assert [count_at(limiter, t).used for t in (1000, 1010, 1020)] == [1, 2, 3]
    refused = count_at(limiter, 1059)
    assert not refused.admitted
    assert refused.retry_after == 1  # the request of 1000 leaves at 1060
    # A minute that starts anew gives no second allowance: 1010 and 1020 are still in.
    assert count_at(limiter, 1060.5).admitted
    assert not count_at(limiter, 1061).admitted
    assert count_at(limiter, 1061).retry_after == 9


def test_refused_requests_do_not_count(limiter):
    for t in (1000, 1001, 1002):
        count_at(limiter, t)
    for t in range(1003, 1060):
        assert not count_at(limiter, t).admitted
    assert count_at(limiter, 1060.5).admitted


def test_tokens_are_counted_apart_and_forgotten_after_the_window(limiter, crm_config):
    for _ in range(3):
        count_at(limiter, 1000, scope="one")
    assert count_at(limiter, 1000, scope="another").admitted
    with redis.Redis.from_url(REDIS_URL) as client:
        ttl = client.ttl(f"{crm_config['CRM_REDIS_PREFIX']}:ratelimit:one")
    assert 0 < ttl <= 60


def test_a_tokens_record_is_read_in_the_round_trip_that_counts(limiter, crm_config):
    key = f"{crm_config['CRM_REDIS_PREFIX']}:auth:token:known"
    with redis.Redis.from_url(REDIS_URL) as client:
        client.set(key, b"the record")
    quota, record = limiter.count_reading("token", key)
    assert (quota.used, record) == (1, b"the record")
    # No such token: nothing read, nothing counted.
    assert limiter.count_reading("token", key + "-gone") == (None, None)
    assert limiter.count("token").used == 2
    # No limit: the record is still read, alone.
    unlimited = RateLimiter(limiter.client, crm_config["CRM_REDIS_PREFIX"], 0)
    assert unlimited.count_reading("token", key) == (None, b"the record")
