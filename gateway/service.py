"""The gateway: the CRM's one HTTP front door."""

import eventlet
import redis
from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider

from crm_common.asking import expiring
from crm_common.metrics import Metrics
from crm_common.rpc import RpcProxy
from gateway import answers
from gateway.auth import TokenStore, bearer_token, check_admin_token, identify, permit, token_digest
from gateway.customers import CustomerEndpoints
from gateway.dashboard import DashboardEndpoints
from gateway.dead_letters import DeadLetterEndpoints
from gateway.deals import DealEndpoints
from gateway.docs import DocsEndpoints
from gateway.http import ApiError, add_headers, api
from gateway.idempotency import IdempotencyStore, idempotent
from gateway.interactions import InteractionEndpoints
from gateway.rate_limit import RateLimiter
from gateway.remote import call
from gateway.reports import ReportEndpoints
from gateway.sharing import SharedReads
from gateway.tokens import TokenEndpoints

READY_TIMEOUT_SECONDS = 2
SERVICES = ("customers", "pipeline", "interactions", "reports")
# Paths of the client API: a token, a rate limit and Idempotency-Keys. Others
# (/health, /ready, documentation, static files) answer anyone, unlimited.
API_PREFIX = "/api/"
# What a claimed Idempotency-Key outlives its request's longest wait by.
CLAIM_MARGIN_SECONDS = 30


def redis_client(config):
    return redis.Redis.from_url(config["CRM_REDIS_URL"], socket_timeout=1, socket_connect_timeout=1)


class Redis(DependencyProvider):
    def setup(self):
        self.client = redis_client(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.client


class Tokens(DependencyProvider):
    """The issued tokens (TokenStore) in the gateway's Redis."""

    def setup(self):
        config = self.container.config
        self.store = TokenStore(redis_client(config), config["CRM_REDIS_PREFIX"])

    def get_dependency(self, worker_ctx):
        return self.store


class RateLimits(DependencyProvider):
    """The RateLimiter every token's requests are counted by."""

    def setup(self):
        config = self.container.config
        self.limiter = RateLimiter(
            redis_client(config), config["CRM_REDIS_PREFIX"], config["CRM_RATE_LIMIT_PER_MINUTE"]
        )

    def get_dependency(self, worker_ctx):
        return self.limiter


class IdempotencyKeys(DependencyProvider):
    """The IdempotencyStore of POST answers."""

    def setup(self):
        config = self.container.config
        # A POST waits on one service call at most, so no claim is settled later than this.
        longest = max(config["CRM_RPC_TIMEOUT"], config["CRM_IMPORT_TIMEOUT"])
        self.store = IdempotencyStore(
            redis_client(config),
            config["CRM_REDIS_PREFIX"],
            config["CRM_IDEMPOTENCY_TTL_SECONDS"],
            running_seconds=longest + CLAIM_MARGIN_SECONDS,
        )

    def get_dependency(self, worker_ctx):
        return self.store


class AdminToken(DependencyProvider):
    def setup(self):
        check_admin_token(self.container.config.get("CRM_ADMIN_TOKEN"))

    def get_dependency(self, worker_ctx):
        return self.container.config["CRM_ADMIN_TOKEN"]


class GatewayService(
    CustomerEndpoints,
    DashboardEndpoints,
    DeadLetterEndpoints,
    DealEndpoints,
    InteractionEndpoints,
    ReportEndpoints,
    TokenEndpoints,
    DocsEndpoints,
):
    name = "gateway"

    config = Config()
    metrics = Metrics()
    admin_token = AdminToken()
    redis = Redis()
    tokens = Tokens()
    rate_limits = RateLimits()
    idempotency_keys = IdempotencyKeys()
    shared_reads = SharedReads()
    customers = RpcProxy("customers")
    pipeline = RpcProxy("pipeline")
    interactions = RpcProxy("interactions")
    reports = RpcProxy("reports")

    def rpc(self, service, method, *args, timeout=None, confirm=True, **kwargs):
        """Call a service; 503 if it does not answer within `timeout` (default CRM_RPC_TIMEOUT).

        A read may go with `confirm=False`: no broker round trip before the request
        leaves, and a service never started is a 503 after `timeout` rather than at once.
        """
        timeout = timeout or self.config["CRM_RPC_TIMEOUT"]
        proxy = expiring(getattr(self, service), timeout, confirm)
        return call(proxy, method, *args, timeout=timeout, **kwargs)

    def serve(self, request, respond, idempotency_key):
        """A call of the client API: a valid token, within its rate limit, once per
        Idempotency-Key (when `idempotency_key`); then `respond()`."""
        if not request.path.startswith(API_PREFIX):
            return respond()
        token = bearer_token(request)
        scope = token_digest(token)
        counted = []

        def read_counting(key):
            # The token's record and the rate limit in one Redis round trip.
            quota, value = self.rate_limits.count_reading(scope, key)
            counted.append(quota)
            return value

        request.crm_principal = identify(request, self.admin_token, self.tokens, read_counting)
        # The admin token is no record in Redis: it is counted on its own.
        quota = counted[0] if counted else self.rate_limits.count(scope)
        if quota is not None:
            add_headers(request, quota.headers())
            if not quota.admitted:
                raise quota.refusal()
        if not idempotency_key:
            return respond()
        return idempotent(self.idempotency_keys, scope, request, respond)

    def identify(self, request):
        """The caller (a Principal) if its token is valid; asked once per request."""
        if not hasattr(request, "crm_principal"):
            request.crm_principal = identify(request, self.admin_token, self.tokens)
        return request.crm_principal

    def authenticate(self, request, permission):
        """The caller (a Principal) if its token is valid and its role may `permission`."""
        return permit(self.identify(request), permission)

    @api("GET", "/health", answers={200: answers.Health})
    def health(self, request):
        """The gateway is alive."""
        return {"status": "ok"}

    @api("GET", "/ready", answers={200: answers.Readiness, 503: answers.Readiness})
    def ready(self, request):
        """Ready when the broker, Redis and every service answer.

        503, with the same shape, names in `checks` what does not answer. Either
        way the answer tells each service's outbox backlog and how far the
        reports are behind the events.
        """
        pool = eventlet.GreenPool()
        health = dict(zip(SERVICES, pool.imap(self._service_health, SERVICES), strict=True))
        checks = {
            name: "ok" if isinstance(answer, dict) else answer for name, answer in health.items()
        }
        checks["redis"] = self._check_redis()
        ready = all(result == "ok" for result in checks.values())
        answered = {name: answer for name, answer in health.items() if isinstance(answer, dict)}
        return (200 if ready else 503), {
            "status": "ready" if ready else "not_ready",
            "checks": checks,
            "outbox_backlog": {
                name: answered.get(name, {}).get("outbox_backlog") for name in SERVICES
            },
            "reports_lag_seconds": answered.get("reports", {}).get("lag_seconds"),
        }

    def _service_health(self, service):
        """The service's `health` answer (a dict), or why it did not answer (text)."""
        try:
            # Expiring as every call does: a service that is down finds no probe's
            # health calls piled up in its queue when it is back.
            return self.rpc(service, "health", timeout=READY_TIMEOUT_SECONDS)
        except ApiError as exc:
            return exc.message

    def _check_redis(self):
        try:
            self.redis.ping()
        except redis.RedisError as exc:
            return f"Redis cannot be reached: {exc}"
        return "ok"
