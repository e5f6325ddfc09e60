"""Idempotency-Key on POST: a request runs once per key, and its repeats get its first answer.

As in the IETF draft "The Idempotency-Key HTTP Header Field": the client
picks a key (a UUID, say) and sends it with a POST; the gateway keeps the
answer (status, headers, body) in Redis for CRM_IDEMPOTENCY_TTL_SECONDS under
the key and the caller's token, and gives it again, marked
`Idempotent-Replayed: true`, to a repeat of the same request (method, path,
query, content type and body) without asking the service again. A key belongs
to a token: another token's same key is another key.

- The same key with another request: 409 IDEMPOTENCY_KEY_REUSED.
- A repeat while the first is still running: 409 IDEMPOTENCY_KEY_IN_PROGRESS
  with Retry-After, at once; the first takes the key with SET NX, so two
  never both run, and the repeat's next try gets the answer.
- Answers 2xx and 4xx are kept. A 5xx (a service did not answer, ...) frees
  the key, so that the client may try again with it.
- Redis away: 503 before anything runs; the gateway does not make a promise
  it cannot keep.
"""

import base64
import hashlib
import json
import logging
import math
import re
import uuid
from dataclasses import dataclass

import redis
from werkzeug.wrappers import Response

from gateway.auth import redis_answers
from gateway.http import ApiError, buffer_body

log = logging.getLogger(__name__)

KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_VALID_KEY = re.compile(r"[\x20-\x7e]{1,255}")
# Werkzeug counts the body of a replay again.
_NOT_KEPT = frozenset({"content-length"})
# A repeat that finds its first still running comes back after this long.
IN_PROGRESS_RETRY_SECONDS = 1

# Take the key when it is free; otherwise answer what is kept under it.
_CLAIM = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return false end
return redis.call('GET', KEYS[1])
"""
# Settle a claim (keep the answer, or free the key) only while it is still this request's:
# a claim that outlived its time may belong to a later request now.
_KEEP = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
"""


def idempotent(store, scope, request, respond):
    """`respond()` once per Idempotency-Key of `scope` (the caller's token); repeats get its answer.

    A request without the header is answered as usual.
    """
    key = request.headers.get(KEY_HEADER)
    if key is None:
        return respond()
    check_key(key)
    request_hash = fingerprint(request, buffer_body(request))
    claim, kept = store.claim(scope, key, request_hash)
    if claim is None:
        return replay(kept, request_hash)
    try:
        response = respond()
    except BaseException:  # the worker is killed or times out: let the client try again
        store.release(claim)
        raise
    if response.status_code < 500:
        store.keep(claim, response)
    else:
        store.release(claim)
    return response


def check_key(key):
    if not _VALID_KEY.fullmatch(key):
        raise ApiError(
            400,
            f"{KEY_HEADER} must be 1 to 255 printable ASCII characters.",
            fields={KEY_HEADER: ["Not 1 to 255 printable ASCII characters."]},
        )


def fingerprint(request, body):
    """What makes two requests the same request: method, path, query, content type, body."""
    digest = hashlib.sha256()
    for part in (
        request.method.encode(),
        request.path.encode(),
        request.query_string,
        request.mimetype.encode(),
        body_digest(request, body),
    ):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def body_digest(request, body):
    if request.mimetype != "multipart/form-data":
        return hashlib.sha256(body).digest()
    # The same form sent again may come with another boundary: its parts are what count.
    digest = hashlib.sha256()
    for name, value in sorted(request.form.items(multi=True)):
        digest.update(json.dumps(["field", name, value]).encode())
    for name, upload in sorted(request.files.items(multi=True), key=lambda item: item[0]):
        content = upload.stream.read()
        upload.stream.seek(0)
        digest.update(json.dumps(["file", name, upload.filename]).encode())
        digest.update(hashlib.sha256(content).digest())
    return digest.digest()


def replay(kept, request_hash):
    """The answer kept for the request, or why there is none to give."""
    record = json.loads(kept)
    if record["request"] != request_hash:
        raise ApiError(
            409,
            f"This {KEY_HEADER} came with another request; a new request needs a new key.",
            code="IDEMPOTENCY_KEY_REUSED",
        )
    if "status" not in record:
        raise ApiError(
            409,
            f"The request with this {KEY_HEADER} is still running; ask again for its answer.",
            code="IDEMPOTENCY_KEY_IN_PROGRESS",
            headers={"Retry-After": str(IN_PROGRESS_RETRY_SECONDS)},
        )
    return Response(
        base64.b64decode(record["body"]),
        status=record["status"],
        headers=[*record["headers"], (REPLAYED_HEADER, "true")],
    )


def kept_answer(request_hash, response):
    return {
        "request": request_hash,
        "status": response.status_code,
        "headers": [
            [name, value] for name, value in response.headers if name.lower() not in _NOT_KEPT
        ],
        "body": base64.b64encode(response.get_data()).decode(),
    }


@dataclass(frozen=True)
class Claim:
    """A key taken for one request: its Redis key and the record that says so."""

    redis_key: str
    record: str
    request_hash: str


class IdempotencyStore:
    """Claims and kept answers in Redis, one record per token and key.

    `running_seconds` bounds how long a claim holds when its request never
    settles it (the gateway died): longer than any request may run.
    """

    def __init__(self, client, prefix, ttl_seconds, running_seconds):
        self.prefix = f"{prefix}:idempotency"
        self.ttl_seconds = ttl_seconds
        self.running_seconds = math.ceil(running_seconds)
        self._claim = client.register_script(_CLAIM)
        self._keep = client.register_script(_KEEP)
        self._release = client.register_script(_RELEASE)

    def claim(self, scope, key, request_hash):
        """(a Claim, None) when the key was free, else (None, the record kept under it)."""
        redis_key = f"{self.prefix}:{scope}:{hashlib.sha256(key.encode()).hexdigest()}"
        record = json.dumps({"request": request_hash, "claim": uuid.uuid4().hex})
        with redis_answers("The idempotency keys"):
            kept = self._claim(keys=[redis_key], args=[record, self.running_seconds])
        if kept is None:
            return Claim(redis_key, record, request_hash), None
        return None, kept

    def keep(self, claim, response):
        answer = json.dumps(kept_answer(claim.request_hash, response))
        self._settle(self._keep, claim, answer, self.ttl_seconds)

    def release(self, claim):
        self._settle(self._release, claim)

    def _settle(self, script, claim, *args):
        # The request has run: its answer goes to the client whatever happens here.
        try:
            if not script(keys=[claim.redis_key], args=[claim.record, *args]):
                log.warning("an Idempotency-Key's claim expired before its request ended")
        except redis.RedisError:
            log.exception(
                "an Idempotency-Key could not be settled; it is held for %s s",
                self.running_seconds,
            )
