"""A test system's configuration, and what it leaves behind in Redis."""

import uuid

import redis

from crm_common.config import SERVICES, db_url_key, from_env
from tests.support import settings
from tests.support.waiting import free_port


def system_config(amqp_uri, db_url_of, data_dir, **overrides):
    """The config of one test system: its broker vhost, `db_url_of(service)` for each
    database (at the service's newest schema already), a Redis key prefix of its own,
    `overrides` on top."""
    environ = {
        "CRM_AMQP_URI": amqp_uri,
        "CRM_REDIS_URL": settings.REDIS_URL,
        "CRM_REDIS_PREFIX": f"crm-test-{uuid.uuid4().hex[:12]}",
        "CRM_DATA_DIR": str(data_dir),
        "CRM_ADMIN_TOKEN": settings.ADMIN_TOKEN,
        "CRM_GATEWAY_ADDRESS": f"127.0.0.1:{free_port()}",
        "CRM_OUTBOX_RELAY_GRACE": "0.5",
        # Tests see the broker path alone; catch-up tests ask for it explicitly.
        "CRM_REPORTS_CATCH_UP_SECONDS": "3600",
        "CRM_REPORTS_SEGMENT_SECONDS": "1",
        # No metrics server unless a test asks for one: tests run side by side on one host.
        "CRM_METRICS_PORT": "0",
        **overrides,
    }
    for name in SERVICES:
        environ[db_url_key(name)] = db_url_of(name)
    return from_env(environ)


def forget_redis_keys(config):
    """Delete what a test system kept in Redis (everything under its prefix)."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(client.scan_iter(match=f"{config['CRM_REDIS_PREFIX']}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()
