"""At most CRM_RATE_LIMIT_PER_MINUTE requests per token in any 60 seconds.

A sliding log in Redis: per token, a sorted set of the times of its requests
still inside the window, trimmed, counted and added to by one script, so the
gateways sharing a Redis share the count and a burst at the turn of a minute
gets no second allowance. A refused request is not counted: a client that
keeps knocking is let in again as its earlier requests leave the window.

Redis away: requests go through uncounted (the limit protects the system, it
must not take it down), a warning is logged, and Redis is left alone for a
few seconds rather than waited on by every request.
"""

import logging
import math
import time
import uuid
from dataclasses import dataclass

import redis

from gateway.http import ApiError

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60
# On every answer to a request counted (or refused), and what each says.
LIMIT_HEADER = "X-RateLimit-Limit"
REMAINING_HEADER = "X-RateLimit-Remaining"
RESET_HEADER = "X-RateLimit-Reset"
HEADERS = {
    LIMIT_HEADER: "Requests this token may make in any 60 seconds (CRM_RATE_LIMIT_PER_MINUTE).",
    REMAINING_HEADER: "Requests it may still make in the window, after this one.",
    RESET_HEADER: "Seconds until the oldest request counted leaves the window (at least 1).",
}
# After Redis failed, requests go uncounted this long before it is asked again.
REST_SECONDS = 5

# -> {1 if this request is let in else 0, requests in the window, time of the oldest}
# With a second key (a token's record), its value comes fourth, read in the same round
# trip; without that key the request is not counted and the answer is {-1}.
_COUNT = """
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local record = nil
if KEYS[2] then
    record = redis.call('GET', KEYS[2])
    if not record then
        return {-1}
    end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
local admitted = 0
if used < limit then
    redis.call('ZADD', KEYS[1], now, ARGV[4])
    redis.call('EXPIRE', KEYS[1], math.ceil(window))
    used = used + 1
    admitted = 1
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {admitted, used, oldest[2], record}
"""


@dataclass(frozen=True)
class Quota:
    """Where one token stands after a request."""

    limit: int
    used: int
    admitted: bool
    # Until the oldest request counted leaves the window (and makes room for one more).
    reset_seconds: float

    @property
    def remaining(self):
        return max(0, self.limit - self.used)

    @property
    def retry_after(self):
        return max(1, math.ceil(self.reset_seconds))

    def headers(self):
        return {
            LIMIT_HEADER: str(self.limit),
            REMAINING_HEADER: str(self.remaining),
            RESET_HEADER: str(self.retry_after),
        }

    def refusal(self):
        return ApiError(
            429,
            f"More than {self.limit} requests in {WINDOW_SECONDS} s with this token; "
            f"try again in {self.retry_after} s.",
            headers={"Retry-After": str(self.retry_after)},
        )


class RateLimiter:
    def __init__(self, client, prefix, per_minute, clock=time.time):
        self.client = client
        self.prefix = f"{prefix}:ratelimit"
        self.per_minute = per_minute
        self.clock = clock
        self.resting_until = 0.0
        self._count = client.register_script(_COUNT)

    def count(self, scope):
        """The Quota of `scope` (a token) with this request counted; None if none is counted."""
        return self._run(scope)[0]

    def count_reading(self, scope, key):
        """(Quota, value of the Redis `key`): the request counted and `key` read in one round
        trip (the token's record: one trip a request instead of two). A missing `key`
        counts nothing: (None, None). Limits off or resting: (None, value read alone)."""
        quota, value, asked = self._run(scope, key)
        if not asked:
            value = self.client.get(key)  # RedisError: the caller's to answer
        return quota, value

    def _run(self, scope, key=None):
        """(Quota or None, value of `key`, whether Redis was asked)."""
        if not self.per_minute:
            return None, None, False
        now = self.clock()
        if now < self.resting_until:
            return None, None, False
        try:
            answer = self._count(
                keys=[f"{self.prefix}:{scope}", *([key] if key else [])],
                args=[repr(now), WINDOW_SECONDS, self.per_minute, uuid.uuid4().hex],
            )
        except redis.RedisError as exc:
            log.warning(
                "rate limits go uncounted for %s s: Redis cannot be reached (%s)", REST_SECONDS, exc
            )
            self.resting_until = now + REST_SECONDS
            return None, None, False
        if answer[0] == -1:
            return None, None, True
        admitted, used, oldest, *value = answer
        quota = Quota(self.per_minute, used, bool(admitted), float(oldest) + WINDOW_SECONDS - now)
        return quota, (value or [None])[0], True
