"""The gateway: the CRM's one HTTP front door."""

import eventlet
import redis
from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider
from nameko.rpc import RpcProxy

from gateway import answers
from gateway.auth import TokenStore, authenticate, check_admin_token
from gateway.customers import CustomerEndpoints
from gateway.deals import DealEndpoints
from gateway.docs import DocsEndpoints
from gateway.http import ApiError, api
from gateway.interactions import InteractionEndpoints
from gateway.remote import call, expiring
from gateway.reports import ReportEndpoints
from gateway.tokens import TokenEndpoints

READY_TIMEOUT_SECONDS = 2
SERVICES = ("customers", "pipeline", "interactions", "reports")


class Redis(DependencyProvider):
    def setup(self):
        self.client = redis.Redis.from_url(
            self.container.config["CRM_REDIS_URL"], socket_timeout=1, socket_connect_timeout=1
        )

    def get_dependency(self, worker_ctx):
        return self.client


class Tokens(DependencyProvider):
    """The issued tokens (TokenStore) in the gateway's Redis."""

    def setup(self):
        config = self.container.config
        client = redis.Redis.from_url(
            config["CRM_REDIS_URL"], socket_timeout=1, socket_connect_timeout=1
        )
        self.store = TokenStore(client, config["CRM_REDIS_PREFIX"])

    def get_dependency(self, worker_ctx):
        return self.store


class AdminToken(DependencyProvider):
    def setup(self):
        check_admin_token(self.container.config.get("CRM_ADMIN_TOKEN"))

    def get_dependency(self, worker_ctx):
        return self.container.config["CRM_ADMIN_TOKEN"]


class GatewayService(
    CustomerEndpoints,
    DealEndpoints,
    InteractionEndpoints,
    ReportEndpoints,
    TokenEndpoints,
    DocsEndpoints,
):
    name = "gateway"

    config = Config()
    admin_token = AdminToken()
    redis = Redis()
    tokens = Tokens()
    customers = RpcProxy("customers")
    pipeline = RpcProxy("pipeline")
    interactions = RpcProxy("interactions")
    reports = RpcProxy("reports")

    def rpc(self, service, method, *args, timeout=None, **kwargs):
        """Call a service; 503 if it does not answer within `timeout` (default CRM_RPC_TIMEOUT)."""
        timeout = timeout or self.config["CRM_RPC_TIMEOUT"]
        return call(
            expiring(getattr(self, service), timeout), method, *args, timeout=timeout, **kwargs
        )

    def authenticate(self, request, permission):
        """The caller (a Principal) if its token is valid and its role may `permission`."""
        return authenticate(request, self.admin_token, self.tokens, permission)

    @api("GET", "/health", answers={200: answers.Health})
    def health(self, request):
        """The gateway is alive."""
        return {"status": "ok"}

    @api("GET", "/ready", answers={200: answers.Readiness, 503: answers.Readiness})
    def ready(self, request):
        """Ready when the broker, Redis and every service answer.

        503, with the same shape, names in `checks` what does not answer.
        """
        pool = eventlet.GreenPool()
        checks = dict(zip(SERVICES, pool.imap(self._check_service, SERVICES), strict=True))
        checks["redis"] = self._check_redis()
        ready = all(result == "ok" for result in checks.values())
        return (200 if ready else 503), {
            "status": "ready" if ready else "not_ready",
            "checks": checks,
        }

    def _check_service(self, service):
        try:
            call(getattr(self, service), "health", timeout=READY_TIMEOUT_SECONDS)
        except ApiError as exc:
            return exc.message
        return "ok"

    def _check_redis(self):
        try:
            self.redis.ping()
        except redis.RedisError as exc:
            return f"Redis cannot be reached: {exc}"
        return "ok"
