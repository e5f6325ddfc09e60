"""One JSON object per log line, so a flow can be followed across services.

Fields passed as `extra=` (request_id, event_id, aggregate_id, ...) become
keys of the line. Besides, every line a worker logs carries the ids of what
it works on (`bind`): the request id of the HTTP request or RPC, the
event_id of the event handled. A worker is a green thread of its own, and
context variables are per green thread, so workers never see each other's.
"""

import contextvars
import json
import logging
import sys
import time
from datetime import UTC, datetime

from amqp import spec
from amqp.abstract_channel import IGNORED_METHOD_DURING_CHANNEL_CLOSE
from nameko.events import EventHandler
from nameko.extensions import DependencyProvider
from nameko.rpc import Rpc

from crm_common import metrics

_log = logging.getLogger("crm.rpc")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_bound = contextvars.ContextVar("crm_log_context", default=None)


def bind(**ids):
    """Add `ids` (those not None) to every line logged from this green thread from now on."""
    ids = {key: value for key, value in ids.items() if value is not None}
    _bound.set({**(_bound.get() or {}), **ids})


def unbind():
    _bound.set(None)


def bound():
    return dict(_bound.get() or {})


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
        line.update(_bound.get() or {})
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class LateConfirms(logging.Filter):
    """Drops py-amqp's warning about a publish confirm that reaches a closing channel.

    When a publish fails while its confirm is due, kombu closes the pooled
    connection it used, and the broker's basic.ack then arrives on a closing
    channel: "Received method (60, 80) during closing channel". It happens on
    every RPC to a service that is not running (the broker returns the
    mandatory request, py-amqp raises the return before it reads the ack that
    follows: UnknownService, a 503 at the gateway) and on a call that times
    out waiting for its confirm, as after a broker outage. The caller has its
    error already; any other method ignored on a closing channel is still logged.
    """

    CONFIRMS = frozenset({spec.Basic.Ack, spec.Basic.Nack})

    def filter(self, record):
        return not (
            record.msg is IGNORED_METHOD_DURING_CHANNEL_CLOSE
            and record.args
            and tuple(record.args[0]) in self.CONFIRMS
        )


LATE_CONFIRMS = LateConfirms()


def configure(service, level="INFO"):
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Nameko logs each worker's timing at DEBUG and kombu is chatty; keep ours.
    for noisy in ("nameko", "kombu", "amqp", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    logging.getLogger("amqp").addFilter(LATE_CONFIRMS)
    # Nameko logs a client's mistake (an expected exception) as a warning with
    # a traceback; RequestLog already records it as the call's outcome.
    logging.getLogger("nameko.containers").setLevel(max(logging.ERROR, root.level))


class RequestLog(DependencyProvider):
    """One line and one latency observation per RPC a service answers, carrying the
    gateway's request id; binds the request id, or the event_id of an event handled, to
    every line the worker logs."""

    def __init__(self):
        self.started = {}

    def worker_setup(self, worker_ctx):
        self.started[worker_ctx] = time.monotonic()
        unbind()
        bind(request_id=worker_ctx.data.get("request_id"), event_id=handled_event_id(worker_ctx))

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        started = self.started.pop(worker_ctx, None)
        if started is None or not isinstance(worker_ctx.entrypoint, Rpc):
            return
        method = worker_ctx.entrypoint.method_name
        outcome = "ok" if exc_info is None else exc_info[0].__name__
        seconds = time.monotonic() - started
        metrics.RPC_DURATION.labels(worker_ctx.service_name, method, outcome).observe(seconds)
        _log.info(
            "rpc %s %s",
            method,
            outcome,
            extra={
                "request_id": worker_ctx.data.get("request_id"),
                "rpc": method,
                "outcome": outcome,
                "duration_ms": round(seconds * 1000, 2),
            },
        )

    def worker_teardown(self, worker_ctx):
        self.started.pop(worker_ctx, None)
        unbind()


def handled_event_id(worker_ctx):
    """The event_id of the envelope an event handler's worker was given, if any."""
    if not isinstance(worker_ctx.entrypoint, EventHandler) or not worker_ctx.args:
        return None
    body = worker_ctx.args[0]
    return str(body.get("event_id")) if isinstance(body, dict) and body.get("event_id") else None
