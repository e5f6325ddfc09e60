"""Identical report reads in flight at once share one call to the reports service.

A dashboard on many screens asks the same few reports with the same filters
over and over: under load most of those reads arrive while an identical call
is on its way already. Each read is still authenticated, authorized and
counted by the rate limit on its own; then, if the same call (the same
report RPC with the same query) was sent less than CRM_GATEWAY_SHARE_SECONDS
ago and has not answered yet, the read waits for that call's answer (or
error) instead of sending another.

What it costs a reader: an answer the reports service may have computed up to
that long before the read arrived, which is the bound the reports service
gives its own hot answers (a view's state is read at most every 0.1 s, see
services/reports/cache.py); its `as_of` and `lag_seconds` say how fresh it
is, as always. A read that joins never waits longer than the call it joined,
which answers or fails within CRM_RPC_TIMEOUT. Report answers depend on the
query only, never on the caller, so sharing shows nobody anything its own
call would not. The reports service logs the call with the request id of
the read that sent it. `0` turns sharing off.
"""

import time

from eventlet.event import Event
from nameko.extensions import DependencyProvider

from gateway.http import ApiError


class Flight:
    """One call in flight and the readers waiting for its outcome."""

    def __init__(self, started):
        self.started = started
        self.outcome = Event()


class SharedCalls:
    """`ask(key, call)`: `call()`'s answer, or that of an identical call (same `key`) sent
    less than `seconds` ago and still in flight."""

    def __init__(self, seconds, clock=time.monotonic):
        self.seconds = seconds
        self.clock = clock
        self.flights = {}

    def ask(self, key, call):
        if self.seconds <= 0:
            return call()
        now = self.clock()
        flight = self.flights.get(key)
        if flight is not None and now - flight.started < self.seconds:
            return flight.outcome.wait()  # raises what the call raised
        flight = self.flights[key] = Flight(now)
        try:
            answer = call()
        except Exception as exc:
            flight.outcome.send_exception(exc)
            raise
        except BaseException:
            # The sender's worker was killed (the gateway stops): its readers hear why.
            flight.outcome.send_exception(ApiError(503, "The gateway is stopping."))
            raise
        else:
            flight.outcome.send(answer)
            return answer
        finally:
            if self.flights.get(key) is flight:
                del self.flights[key]


class SharedReads(DependencyProvider):
    """The gateway's SharedCalls, for CRM_GATEWAY_SHARE_SECONDS."""

    def setup(self):
        self.calls = SharedCalls(self.container.config["CRM_GATEWAY_SHARE_SECONDS"])

    def get_dependency(self, worker_ctx):
        return self.calls
