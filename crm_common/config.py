"""Configuration from environment variables.

Every setting is an environment variable with a documented default (README,
"Configuration"). `from_env` turns them into the Nameko config dict that
travels with each container; the keys keep the variable names, so a test can
build the same dict by hand and a reader can grep one name end to end.
"""

import os
from pathlib import Path

SERVICES = ("customers", "pipeline", "interactions", "reports")

DEFAULTS = {
    "CRM_AMQP_URI": "amqp://guest:guest@127.0.0.1:5672/",
    "CRM_REDIS_URL": "redis://127.0.0.1:6379/0",
    # Every key the gateway writes in Redis starts with this: systems can share a server.
    "CRM_REDIS_PREFIX": "crm",
    "CRM_DATA_DIR": "data",
    "CRM_GATEWAY_ADDRESS": "127.0.0.1:8000",
    "CRM_ADMIN_TOKEN": "",
    "CRM_RPC_TIMEOUT": "5",
    "CRM_MAX_BODY_BYTES": str(1024 * 1024),
    # CSV imports: the largest file, and how long the gateway waits for one.
    "CRM_MAX_IMPORT_BYTES": str(32 * 1024 * 1024),
    "CRM_IMPORT_TIMEOUT": "300",
    "CRM_OUTBOX_RELAY_GRACE": "2",
    "CRM_MAX_WORKERS": "10",
    # The gateway holds a worker per request in flight, most of them waiting on a service.
    "CRM_GATEWAY_MAX_WORKERS": "100",
    # Also the messages each reports queue's handlers take at once, in batches, and half of
    # the broker's prefetch of each queue (crm_common.handlers.BatchEventHandler).
    "CRM_REPORTS_MAX_WORKERS": "500",
    # Identical report reads within this many seconds share one call (gateway/sharing.py).
    "CRM_GATEWAY_SHARE_SECONDS": "0.1",
    "CRM_LOG_LEVEL": "INFO",
    # How often reports read the producers' logs for events the broker did not deliver.
    "CRM_REPORTS_CATCH_UP_SECONDS": "30",
    # How often reports may recompute customer segments (when their inputs changed).
    "CRM_REPORTS_SEGMENT_SECONDS": "5",
    # How long reports keep an answer in Redis (0: not at all); a changed view needs a new one.
    "CRM_REPORTS_CACHE_SECONDS": "300",
    # Ticket SLA targets by priority, in minutes from opening: first response and resolution.
    "CRM_SLA_URGENT_RESPONSE_MINUTES": "15",
    "CRM_SLA_URGENT_RESOLUTION_MINUTES": "240",
    "CRM_SLA_HIGH_RESPONSE_MINUTES": "60",
    "CRM_SLA_HIGH_RESOLUTION_MINUTES": "480",
    "CRM_SLA_NORMAL_RESPONSE_MINUTES": "240",
    "CRM_SLA_NORMAL_RESOLUTION_MINUTES": "1440",
    "CRM_SLA_LOW_RESPONSE_MINUTES": "1440",
    "CRM_SLA_LOW_RESOLUTION_MINUTES": "4320",
    # How often the interactions service looks for tickets past an SLA target.
    "CRM_SLA_CHECK_SECONDS": "30",
    # How long the gateway keeps the first answer to a POST with an Idempotency-Key.
    "CRM_IDEMPOTENCY_TTL_SECONDS": "86400",
    # Requests per token in any 60 seconds (0: no limit).
    "CRM_RATE_LIMIT_PER_MINUTE": "600",
    # Tries of an event that fails with an error that may pass, before it is a dead letter.
    "CRM_EVENT_MAX_ATTEMPTS": "5",
    # Wait before the first retry of such an event; each next wait doubles (at most 5 min).
    "CRM_EVENT_RETRY_SECONDS": "2",
    # RabbitMQ queue type of the services' event-handler queues: classic or quorum.
    "CRM_EVENT_QUEUE_TYPE": "classic",
    # Where a process serves /metrics for Prometheus (port 0: nowhere). `crm up` gives its
    # processes this port and the next four, in the order of PROCESSES.
    "CRM_METRICS_HOST": "127.0.0.1",
    "CRM_METRICS_PORT": "9180",
}
QUEUE_TYPES = ("classic", "quorum")
# Every process `crm run` knows, in the order `crm up` starts them (and numbers their ports).
PROCESSES = (*SERVICES, "gateway")
HIGHEST_PORT = 65535

INT_SETTINGS = (
    "CRM_MAX_BODY_BYTES",
    "CRM_MAX_IMPORT_BYTES",
    "CRM_MAX_WORKERS",
    "CRM_GATEWAY_MAX_WORKERS",
    "CRM_REPORTS_MAX_WORKERS",
    "CRM_REPORTS_CACHE_SECONDS",
    "CRM_IDEMPOTENCY_TTL_SECONDS",
    "CRM_RATE_LIMIT_PER_MINUTE",
    "CRM_EVENT_MAX_ATTEMPTS",
    "CRM_METRICS_PORT",
)
# Settings where 0 means "off" rather than a mistake.
ZERO_ALLOWED = (
    "CRM_REPORTS_CACHE_SECONDS",
    "CRM_RATE_LIMIT_PER_MINUTE",
    "CRM_METRICS_PORT",
    "CRM_GATEWAY_SHARE_SECONDS",
)
FLOAT_SETTINGS = (
    "CRM_RPC_TIMEOUT",
    "CRM_IMPORT_TIMEOUT",
    "CRM_OUTBOX_RELAY_GRACE",
    "CRM_GATEWAY_SHARE_SECONDS",
    "CRM_REPORTS_CATCH_UP_SECONDS",
    "CRM_REPORTS_SEGMENT_SECONDS",
    "CRM_SLA_URGENT_RESPONSE_MINUTES",
    "CRM_SLA_URGENT_RESOLUTION_MINUTES",
    "CRM_SLA_HIGH_RESPONSE_MINUTES",
    "CRM_SLA_HIGH_RESOLUTION_MINUTES",
    "CRM_SLA_NORMAL_RESPONSE_MINUTES",
    "CRM_SLA_NORMAL_RESOLUTION_MINUTES",
    "CRM_SLA_LOW_RESPONSE_MINUTES",
    "CRM_SLA_LOW_RESOLUTION_MINUTES",
    "CRM_SLA_CHECK_SECONDS",
    "CRM_EVENT_RETRY_SECONDS",
)


def db_url_key(service_name):
    return f"CRM_{service_name.upper()}_DB_URL"


def default_db_url(data_dir, service_name):
    path = Path(data_dir).resolve() / f"{service_name}.db"
    return f"sqlite:///{path}"


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def from_env(environ=None):
    environ = os.environ if environ is None else environ
    settings = {key: environ.get(key, default) for key, default in DEFAULTS.items()}
    for key in INT_SETTINGS:
        settings[key] = _number(key, settings[key], int)
    for key in FLOAT_SETTINGS:
        settings[key] = _number(key, settings[key], float)
    if settings["CRM_EVENT_QUEUE_TYPE"] not in QUEUE_TYPES:
        raise ConfigError(
            f"CRM_EVENT_QUEUE_TYPE must be one of {', '.join(QUEUE_TYPES)}, "
            f"got {settings['CRM_EVENT_QUEUE_TYPE']!r}"
        )
    if settings["CRM_METRICS_PORT"] + len(PROCESSES) - 1 > HIGHEST_PORT:
        raise ConfigError(
            f"CRM_METRICS_PORT must leave room for {len(PROCESSES)} ports below "
            f"{HIGHEST_PORT + 1}, got {settings['CRM_METRICS_PORT']}"
        )
    for service_name in SERVICES:
        key = db_url_key(service_name)
        settings[key] = environ.get(key) or default_db_url(settings["CRM_DATA_DIR"], service_name)
    return nameko_config(settings)


def metrics_port_of(config, name):
    """The metrics port `crm up` gives process `name`: CRM_METRICS_PORT plus its place in
    PROCESSES (0 stays 0: no metrics anywhere)."""
    base = config["CRM_METRICS_PORT"]
    return base + PROCESSES.index(name) if base else 0


def for_process(config, name):
    """The config of one `crm run NAME` process."""
    if name == "gateway":
        return dict(config, max_workers=config["CRM_GATEWAY_MAX_WORKERS"])
    if name == "reports":
        return dict(config, max_workers=config["CRM_REPORTS_MAX_WORKERS"])
    return config


def nameko_config(settings):
    """The container config: our settings plus the keys Nameko itself reads."""
    config = dict(settings)
    config["AMQP_URI"] = settings["CRM_AMQP_URI"]
    config["WEB_SERVER_ADDRESS"] = settings["CRM_GATEWAY_ADDRESS"]
    config["max_workers"] = settings["CRM_MAX_WORKERS"]
    config["serializer"] = "json"
    return config


def _number(key, raw, kind):
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a number, got {raw!r}") from None
    if key in ZERO_ALLOWED:
        if value < 0:
            raise ConfigError(f"{key} must be zero or more, got {raw!r}")
    elif value <= 0:
        raise ConfigError(f"{key} must be greater than zero, got {raw!r}")
    return value
