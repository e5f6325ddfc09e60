"""Rate limits: the headers and the 429 a quota gives, and a Redis outage that lets requests by."""

import logging

import pytest
import redis

from gateway.rate_limit import REST_SECONDS, Quota, RateLimiter
from tests.support.fakes import FakeClock


class FakeClient:
    """Runs the rate limiter's script as told: answers in turn, or an exception."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = 0

    def register_script(self, source):
        return self.run

    def run(self, keys, args):
        self.calls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_headers_say_the_limit_what_is_left_and_when_a_request_leaves_the_window():
    quota = Quota(limit=5, used=3, admitted=True, reset_seconds=41.2)
    assert quota.headers() == {
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "2",
        "X-RateLimit-Reset": "42",
    }


def test_over_the_limit_is_429_with_retry_after_in_whole_seconds():
    refusal = Quota(limit=5, used=5, admitted=False, reset_seconds=0.2).refusal()
    assert (refusal.status, refusal.code) == (429, "RATE_LIMITED")
    assert refusal.headers == {"Retry-After": "1"}
    assert "5 requests" in refusal.message


def test_the_script_answer_becomes_a_quota_against_the_window():
    client = FakeClient([1, 2, b"970.5"])
    quota = RateLimiter(client, "crm", 10, clock=FakeClock(1000.0)).count("token")
    assert quota == Quota(limit=10, used=2, admitted=True, reset_seconds=30.5)


def test_no_limit_asks_redis_nothing():
    client = FakeClient()
    assert RateLimiter(client, "crm", 0).count("token") is None
    assert client.calls == 0


def test_redis_away_lets_requests_by_and_is_left_alone_for_a_while(caplog):
    clock = FakeClock()
    client = FakeClient(redis.ConnectionError("refused"), [1, 1, b"1000"])
    limiter = RateLimiter(client, "crm", 10, clock=clock)
    with caplog.at_level(logging.WARNING, logger="gateway.rate_limit"):
        assert limiter.count("token") is None
    assert "Redis cannot be reached" in caplog.text

    clock.now += REST_SECONDS - 0.1
    assert limiter.count("token") is None
    assert client.calls == 1

    clock.now += 0.2
    assert limiter.count("token").admitted
    assert client.calls == 2


@pytest.mark.parametrize(("used", "remaining"), [(0, 5), (5, 0), (7, 0)])
def test_remaining_never_goes_below_zero(used, remaining):
    assert Quota(limit=5, used=used, admitted=True, reset_seconds=1).remaining == remaining
