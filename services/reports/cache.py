"""Hot report answers in Redis, never in the way of an answer.

An answer is stored under a key made of the report, its query and the
watermark of the view it reads (the number of events applied to it). Every
event that changes the view moves the watermark, so the next read asks for a
key nobody stored yet: invalidation is the event itself, the old answers
expire on their own (CRM_REPORTS_CACHE_SECONDS).

Redis is a shortcut: when it is down or slow the answer comes from the
database, and Redis is left alone for a few seconds rather than waited on by
every read.
"""

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


class AnswerCache:
    def __init__(self, client, prefix, ttl_seconds, clock=time.monotonic):
        self.client = client
        self.prefix = f"{prefix}:reports:answers"
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self.resting_until = 0.0

    def key(self, report, watermark, query):
        digest = hashlib.sha256(
            json.dumps(query, sort_keys=True, default=str).encode()
        ).hexdigest()[:32]
        return f"{self.prefix}:{report}:{watermark}:{digest}"

    def get(self, key):
        """The answer stored under `key`, or None (not there, or Redis is away)."""
        raw = self._ask(self.client.get, key)
        return json.loads(raw) if raw else None

    def put(self, key, answer):
        if self.ttl_seconds > 0:
            self._ask(self.client.set, key, json.dumps(answer), ex=self.ttl_seconds)

    def _ask(self, command, *args, **kwargs):
        if self.clock() < self.resting_until:
            return None
        try:
            return command(*args, **kwargs)
        except redis.RedisError as exc:
            log.warning("report cache unavailable, answering from the database: %s", exc)
            self.resting_until = self.clock() + REST_SECONDS
            return None


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
