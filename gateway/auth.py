"""Who is calling, and what they may do: bearer tokens with roles.

The first admin token comes from CRM_ADMIN_TOKEN. Admins issue tokens with
a role (`/api/v1/auth/tokens`); the gateway keeps only their SHA-256 hashes
in Redis (a token is 256 random bits, so a plain hash is as good as a slow
one), with the token's id, role and subject. Revoking deletes the hash: the
next request with that token is a 401.

What each role may do is one table, `PERMISSIONS`. Record-level rules
(a sales rep changes only the deals it owns) are enforced by the service
that owns the record, from the `actor` the gateway passes along.
"""

import contextlib
import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass

import redis

from crm_common.envelope import utcnow
from gateway.http import ApiError

MIN_ADMIN_TOKEN_LENGTH = 16
TOKEN_PREFIX = "crm_"

ROLES = ("admin", "manager", "sales", "service", "marketing", "viewer")
EVERYONE = frozenset(ROLES)
PERMISSIONS = {
    "customers:read": EVERYONE,
    "customers:write": frozenset({"admin", "manager", "sales", "service", "marketing"}),
    "customers:export": frozenset({"admin", "manager", "marketing"}),
    # Merging, erasing, and answering a person's request for their data.
    "customers:admin": frozenset({"admin", "manager"}),
    "deals:read": EVERYONE,
    "deals:write": frozenset({"admin", "manager", "sales"}),
    "pipelines:write": frozenset({"admin", "manager"}),
    "interactions:read": EVERYONE,
    "interactions:write": frozenset({"admin", "manager", "sales", "service", "marketing"}),
    "tickets:read": EVERYONE,
    "tickets:write": frozenset({"admin", "manager", "service"}),
    "reports:read": EVERYONE,
    "tokens:admin": frozenset({"admin"}),
    "reports:admin": frozenset({"admin"}),
    "dead_letters:admin": frozenset({"admin"}),
}
# Roles that may change only the records they own.
OWN_RECORDS_ONLY = frozenset({"sales"})

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="crm"'}


@dataclass(frozen=True)
class Principal:
    subject: str
    role: str
    token_id: str | None = None

    def may(self, permission):
        return self.role in PERMISSIONS[permission]

    @property
    def permissions(self):
        return sorted(name for name, roles in PERMISSIONS.items() if self.role in roles)

    @property
    def actor(self):
        """Who is asking, as the services take it (see their `Actor` schemas)."""
        return {"subject": self.subject, "own_only": self.role in OWN_RECORDS_ONLY}


def check_admin_token(token):
    """Refuse to start with no admin token, or one anyone could guess."""
    if len(token or "") < MIN_ADMIN_TOKEN_LENGTH:
        raise ValueError(
            "CRM_ADMIN_TOKEN must be set to a secret of at least "
            f"{MIN_ADMIN_TOKEN_LENGTH} characters"
        )


def bearer_token(request):
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "Send a token: Authorization: Bearer <token>.", headers=CHALLENGE)
    return token


def token_digest(token):
    """What stands for a token wherever the gateway keeps something of it: never the secret."""
    return hashlib.sha256(token.encode()).hexdigest()


def is_admin_token(token, admin_token):
    return hmac.compare_digest(token.encode(), admin_token.encode())


def identify(request, admin_token, tokens, read=None):
    """The caller's Principal; 401 without a valid token. `read(key)`, if given, reads
    the token's record from Redis (see TokenStore.find)."""
    token = bearer_token(request)
    if is_admin_token(token, admin_token):
        return Principal(subject="admin", role="admin")
    principal = tokens.find(token, read)
    if principal is None:
        raise ApiError(401, "The token is not valid.", headers=CHALLENGE)
    return principal


def permit(principal, permission):
    """The principal again; 403 if its role may not `permission`."""
    if not principal.may(permission):
        raise ApiError(
            403, f"The role {principal.role} may not do this ({permission}).", role=principal.role
        )
    return principal


class TokenStore:
    """Issued tokens in Redis, by the hash of their secret."""

    def __init__(self, client, prefix):
        self.client = client
        self.prefix = f"{prefix}:auth"

    def key_of(self, secret):
        """The Redis key of the token's record."""
        return f"{self.prefix}:token:{token_digest(secret)}"

    def issue(self, role, subject, created_by, ttl_seconds=None):
        """A new token: its record, and the secret, which is shown this once."""
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        record = {
            "id": str(uuid.uuid4()),
            "role": role,
            "subject": subject,
            "created_at": utcnow().isoformat(),
            "created_by": created_by,
            "expires_in_seconds": ttl_seconds,
        }
        key = self.key_of(secret)
        with redis_answers():
            pipe = self.client.pipeline()
            pipe.set(key, json.dumps(record), ex=ttl_seconds)
            pipe.hset(f"{self.prefix}:ids", record["id"], key)
            pipe.execute()
        return record, secret

    def find(self, secret, read=None):
        """The token's Principal, None for no such token; `read(key)` reads its record
        instead of a GET of its own (the rate limit reads it in the round trip it makes)."""
        with redis_answers():
            raw = (read or self.client.get)(self.key_of(secret))
        if raw is None:
            return None
        record = json.loads(raw)
        return Principal(subject=record["subject"], role=record["role"], token_id=record["id"])

    def all(self):
        """Every live token's record, oldest first; expired ones are forgotten on the way."""
        with redis_answers():
            keys = self.client.hgetall(f"{self.prefix}:ids")
            values = self.client.mget(list(keys.values())) if keys else []
            gone = [token_id for token_id, raw in zip(keys, values, strict=True) if raw is None]
            if gone:
                self.client.hdel(f"{self.prefix}:ids", *gone)
        records = [json.loads(raw) for raw in values if raw is not None]
        return sorted(records, key=lambda record: (record["created_at"], record["id"]))

    def revoke(self, token_id):
        """Delete the token; False if there was none with that id."""
        with redis_answers():
            key = self.client.hget(f"{self.prefix}:ids", token_id)
            if key is None:
                return False
            pipe = self.client.pipeline()
            pipe.delete(key)
            pipe.hdel(f"{self.prefix}:ids", token_id)
            pipe.execute()
        return True


@contextlib.contextmanager
def redis_answers(what="The token store"):
    """Redis down means `what` it keeps (tokens, idempotency keys) is out of reach: 503, not 500."""
    try:
        yield
    except redis.RedisError:
        raise ApiError(503, f"{what} (Redis) cannot be reached.") from None
