"""Identical report reads in flight share one call to the reports service (gateway/sharing.py)."""

import eventlet
import pytest
from eventlet.event import Event

from gateway.http import ApiError
from gateway.sharing import SharedCalls


class Clock:
    now = 100.0

    def __call__(self):
        return self.now


class SlowService:
    """Answers each call once `release()` is called; counts the calls."""

    def __init__(self):
        self.calls = []
        self.gate = Event()

    def call(self, answer):
        def run():
            self.calls.append(answer)
            number = len(self.calls)
            outcome = self.gate.wait()
            if isinstance(outcome, Exception):
                raise outcome
            return {"answer": answer, "call": number}

        return run

    def release(self, outcome=None):
        self.gate.send(outcome)


def asked(shared, key, call):
    thread = eventlet.spawn(shared.ask, key, call)
    eventlet.sleep(0)  # let it send or join
    return thread


def test_reads_of_the_same_call_in_flight_share_its_answer():
    shared, service = SharedCalls(0.1, clock=Clock()), SlowService()
    first = asked(shared, "funnel", service.call("funnel"))
    second = asked(shared, "funnel", service.call("funnel"))
    service.release()
    assert first.wait() == second.wait() == {"answer": "funnel", "call": 1}
    assert service.calls == ["funnel"]


def test_different_calls_are_not_shared():
    shared, service = SharedCalls(0.1, clock=Clock()), SlowService()
    funnel = asked(shared, ("funnel_report", '{"owner": "sam"}'), service.call("sam"))
    other = asked(shared, ("funnel_report", '{"owner": "kim"}'), service.call("kim"))
    service.release()
    assert funnel.wait()["answer"] == "sam"
    assert other.wait()["answer"] == "kim"
    assert service.calls == ["sam", "kim"]


def test_a_call_sent_longer_ago_than_the_bound_is_not_joined():
    """A reader never gets an answer the service may have made more than `seconds`
    before the reader asked."""
    clock = Clock()
    shared, service = SharedCalls(0.1, clock=clock), SlowService()
    first = asked(shared, "funnel", service.call("funnel"))
    clock.now += 0.11
    second = asked(shared, "funnel", service.call("funnel"))
    clock.now += 0.05
    third = asked(shared, "funnel", service.call("funnel"))
    service.release()
    assert [thread.wait()["call"] for thread in (first, second, third)] == [1, 2, 2]
    assert len(service.calls) == 2


def test_a_call_answered_is_not_reused():
    shared, service = SharedCalls(0.1, clock=Clock()), SlowService()
    service.release()
    assert shared.ask("funnel", service.call("funnel"))["call"] == 1
    assert shared.ask("funnel", service.call("funnel"))["call"] == 2


def test_every_reader_of_a_failed_call_gets_its_error():
    shared, service = SharedCalls(0.1, clock=Clock()), SlowService()
    first = asked(shared, "funnel", service.call("funnel"))
    second = asked(shared, "funnel", service.call("funnel"))
    service.release(ApiError(503, "The reports service did not answer within 5 s."))
    for thread in (first, second):
        with pytest.raises(ApiError) as raised:
            thread.wait()
        assert raised.value.status == 503
    assert len(service.calls) == 1
    service.gate.reset()
    service.release()
    assert shared.ask("funnel", service.call("funnel"))["call"] == 2, "asked again after"


def test_readers_of_a_call_whose_sender_is_killed_hear_503():
    shared, service = SharedCalls(0.1, clock=Clock()), SlowService()
    first = asked(shared, "funnel", service.call("funnel"))
    second = asked(shared, "funnel", service.call("funnel"))
    first.kill()
    with pytest.raises(ApiError) as raised:
        second.wait()
    assert raised.value.status == 503


def test_zero_seconds_shares_nothing():
    shared, service = SharedCalls(0, clock=Clock()), SlowService()
    first = asked(shared, "funnel", service.call("funnel"))
    second = asked(shared, "funnel", service.call("funnel"))
    service.release()
    assert {first.wait()["call"], second.wait()["call"]} == {1, 2}
    assert len(service.calls) == 2
