"""Rate limits: the headers and the 429 a quota gives, and a Redis outage that lets requests by."""

import logging
from types import SimpleNamespace

import eventlet
import pytest
import redis

from gateway.rate_limit import REST_SECONDS, Pipelined, Quota, RateLimiter
from tests.support.fakes import FakeClock


class FakeClient:
    """Runs the rate limiter's script as told: answers in turn (a connection error breaks
    the whole round trip, a script's error is its call's answer); `loaded` counts the
    script's loads."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = 0
        self.round_trips = 0
        self.loaded = 0

    def register_script(self, source):
        return SimpleNamespace(sha="sha1-of-script", script=source)

    def script_load(self, source):
        self.loaded += 1

    def pipeline(self, transaction=True):
        assert not transaction
        return FakePipeline(self)


class FakePipeline:
    def __init__(self, client):
        self.client = client
        self.commands = []

    def execute_command(self, *args):
        self.commands.append(args)

    def execute(self, raise_on_error=True):
        assert not raise_on_error
        self.client.round_trips += 1
        answers = []
        for _ in self.commands:
            self.client.calls += 1
            answer = self.client.answers.pop(0)
            if isinstance(answer, redis.ConnectionError):
                raise answer
            answers.append(answer)
        return answers


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


def test_calls_made_while_a_round_trip_is_out_go_together_in_the_next():
    client = FakeClient(*[[n] for n in range(1, 6)])
    pipelined = Pipelined(client, "return 1")
    gate = eventlet.event.Event()
    round_trip = pipelined._round_trip

    def slow_round_trip(batch):
        gate.wait()  # the first round trip is out while the others come
        return round_trip(batch)

    pipelined._round_trip = slow_round_trip
    threads = [eventlet.spawn(pipelined.run, [f"key-{n}"], []) for n in range(5)]
    eventlet.sleep(0)
    gate.send()
    assert [thread.wait() for thread in threads] == [[1], [2], [3], [4], [5]], "in order"
    assert client.round_trips == 2, "the first call alone, then the four that waited"
    assert not pipelined.sending


def test_a_broken_round_trip_fails_each_of_its_calls_and_the_next_goes_again():
    client = FakeClient(redis.ConnectionError("refused"), [1, 1, b"1000"])
    pipelined = Pipelined(client, "return 1")
    with pytest.raises(redis.ConnectionError):
        pipelined.run(["key"], [])
    assert pipelined.run(["key"], []) == [1, 1, b"1000"]


def test_a_script_redis_forgot_is_loaded_and_asked_again():
    client = FakeClient(redis.exceptions.NoScriptError("NOSCRIPT"), [7])
    assert Pipelined(client, "return 7").run(["key"], []) == [7]
    assert (client.loaded, client.round_trips) == (1, 2)
