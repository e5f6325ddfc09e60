"""One JSON object per log line, so a flow can be followed across services.

Fields passed as `extra=` (request_id, event_id, aggregate_id, ...) become
keys of the line.
"""

import json
import logging
import sys
import time
from datetime import UTC, datetime

from nameko.extensions import DependencyProvider
from nameko.rpc import Rpc

_log = logging.getLogger("crm.rpc")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service):
        super().__init__()
        self.service = service

    def format(self, record):
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure(service, level="INFO"):
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Nameko logs each worker's timing at DEBUG and kombu is chatty; keep ours.
    for noisy in ("nameko", "kombu", "amqp", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # Nameko logs a client's mistake (an expected exception) as a warning with
    # a traceback; RequestLog already records it as the call's outcome.
    logging.getLogger("nameko.containers").setLevel(max(logging.ERROR, root.level))


class RequestLog(DependencyProvider):
    """One line per RPC a service answers, carrying the gateway's request id."""

    def __init__(self):
        self.started = {}

    def worker_setup(self, worker_ctx):
        self.started[worker_ctx] = time.monotonic()

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        started = self.started.pop(worker_ctx, None)
        if started is None or not isinstance(worker_ctx.entrypoint, Rpc):
            return
        outcome = "ok" if exc_info is None else exc_info[0].__name__
        _log.info(
            "rpc %s %s",
            worker_ctx.entrypoint.method_name,
            outcome,
            extra={
                "request_id": worker_ctx.data.get("request_id"),
                "rpc": worker_ctx.entrypoint.method_name,
                "outcome": outcome,
                "duration_ms": round((time.monotonic() - started) * 1000, 2),
            },
        )

    def worker_teardown(self, worker_ctx):
        self.started.pop(worker_ctx, None)
