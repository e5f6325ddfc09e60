"""Hot report answers in memory and in Redis, never in the way of an answer.

An answer is stored under a key made of the report, its query and the
watermark of the view it reads (the number of events applied to it). Every
event that changes the view moves the watermark (and so does a rebuild's final
count of the deals, deal_counts.py), so the next read asks for a key nobody
stored yet: invalidation is the event itself, the old answers expire on their
own (CRM_REPORTS_CACHE_SECONDS).

Since a key names what its answer was made from, an answer is as good in this
process's memory as in Redis: each instance keeps the answers it computed or
fetched (the most recently used, up to MEMORY_BYTES of their JSON) and asks
Redis only for the others. A hot read then costs no Redis round trip, and a
busy process that would miss Redis's timeout still has its hot answers.

Redis is a shortcut: when it is down or slow the answer comes from memory or
the database, and Redis is left alone for a few seconds rather than waited
on by every read.

The watermark itself comes from the database (the view's state), read at
most every STATE_SECONDS per instance, every view's in one statement (`ViewStates`): a read may
then miss events applied in the last tenth of a second, as if they had
arrived that much later, and its `as_of` says so. Under load most hot reads
then touch neither the database nor Redis.
"""

import collections
import hashlib
import json
import logging
import time

import redis
from nameko.extensions import DependencyProvider

log = logging.getLogger(__name__)

# How long a read gives Redis, and how long Redis is left alone after it failed.
TIMEOUT_SECONDS = 0.2
REST_SECONDS = 5
# The answers an instance keeps in memory, by the size of their JSON.
MEMORY_BYTES = 32 * 1024 * 1024
# How long a view's state read from the database serves the reads of that view.
STATE_SECONDS = 0.1


class AnswerCache:
    """Answers by key. Each `get` gives a copy its caller may add keys to; the values
    inside are shared and must not be changed."""

    def __init__(
        self, client, prefix, ttl_seconds, clock=time.monotonic, memory_bytes=MEMORY_BYTES
    ):
        self.client = client
        self.prefix = f"{prefix}:reports:answers"
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self.resting_until = 0.0
        self.memory_bytes = memory_bytes
        # key -> (expires at, size of its JSON, answer); least recently used first.
        self.held = collections.OrderedDict()
        self.held_bytes = 0

    def key(self, report, watermark, query):
        digest = hashlib.sha256(
            json.dumps(query, sort_keys=True, default=str).encode()
        ).hexdigest()[:32]
        return f"{self.prefix}:{report}:{watermark}:{digest}"

    def get(self, key):
        """The answer stored under `key`, or None (not there, or Redis is away)."""
        answer = self._recall(key)
        if answer is None:
            raw = self._ask(self.client.get, key)
            if not raw:
                return None
            answer = json.loads(raw)
            self._hold(key, answer, len(raw))
        return dict(answer)

    def put(self, key, answer):
        if self.ttl_seconds > 0:
            raw = json.dumps(answer)
            self._hold(key, dict(answer), len(raw))
            self._ask(self.client.set, key, raw, ex=self.ttl_seconds)

    def forget(self):
        """Drop the answers held in memory (Redis keeps its own); answers how many."""
        count = len(self.held)
        self.held.clear()
        self.held_bytes = 0
        return count

    def _recall(self, key):
        held = self.held.get(key)
        if held is None:
            return None
        expires, size, answer = held
        if self.clock() >= expires:
            self._drop(key)
            return None
        self.held.move_to_end(key)
        return answer

    def _hold(self, key, answer, size):
        if size > self.memory_bytes:
            return
        if key in self.held:
            self._drop(key)
        self.held[key] = (self.clock() + self.ttl_seconds, size, answer)
        self.held_bytes += size
        while self.held_bytes > self.memory_bytes:
            self._drop(next(iter(self.held)))

    def _drop(self, key):
        self.held_bytes -= self.held.pop(key)[1]

    def _ask(self, command, *args, **kwargs):
        if self.clock() < self.resting_until:
            return None
        try:
            return command(*args, **kwargs)
        except redis.RedisError as exc:
            log.warning("report cache unavailable, answering from the database: %s", exc)
            self.resting_until = self.clock() + REST_SECONDS
            return None


class ViewStates:
    """`read(session, view)`: (the view's state, whether a rebuild is under way) from
    `read_states(session)`, which reads every view's state at once; asked again only once
    the last answer is STATE_SECONDS old. The reads of every report then share one
    statement per STATE_SECONDS, however many views they read."""

    def __init__(self, read_states, clock=time.monotonic, seconds=STATE_SECONDS):
        self.read_states = read_states
        self.clock = clock
        self.seconds = seconds
        self.known = None  # (read at, (states by view, rebuilding))

    def read(self, session, view):
        now = self.clock()
        if self.known is None or now - self.known[0] >= self.seconds:
            self.known = (now, self.read_states(session))
        states, rebuilding = self.known[1]
        return states.get(view), rebuilding


class ReportCache(DependencyProvider):
    """Injects the service's AnswerCache."""

    def setup(self):
        config = self.container.config
        client = redis.Redis.from_url(
            config["CRM_REDIS_URL"],
            socket_timeout=TIMEOUT_SECONDS,
            socket_connect_timeout=TIMEOUT_SECONDS,
        )
        self.cache = AnswerCache(
            client, config["CRM_REDIS_PREFIX"], config["CRM_REPORTS_CACHE_SECONDS"]
        )

    def get_dependency(self, worker_ctx):
        return self.cache
