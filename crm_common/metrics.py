"""Prometheus metrics of every CRM process, served on a port of its own.

Counters and histograms live in prometheus_client's default registry and
carry a `service` label, so that several containers in one process (the
tests run them that way) stay apart. Gauges that are cheap to read but
expensive to keep current (the outbox backlog and the reports' lag from the
database, the depth of the event queues from the broker) are read when
Prometheus scrapes, through `Readings`, by whichever extension owns them.

`Metrics()` is a dependency of every service and of the gateway: it starts
the HTTP server on CRM_METRICS_HOST:CRM_METRICS_PORT (0: no server) with the
container, and watches the depth of the container's event handler queues.
The server is an eventlet WSGI server, shared by the containers of one
process (its green threads, like the workers', never block the hub).
"""

import contextlib
import logging
import threading
import time

import eventlet
from eventlet import wsgi
from kombu import Connection
from kombu.exceptions import ChannelError
from nameko.events import EventHandler
from nameko.extensions import DependencyProvider
from prometheus_client import REGISTRY, Counter, Histogram, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger(__name__)

HTTP_REQUESTS = Counter(
    "crm_http_requests_total",
    "HTTP requests the gateway answered, by method, route template and status.",
    ["service", "method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "crm_http_request_duration_seconds",
    "Time the gateway took to answer a request, by method and route template.",
    ["service", "method", "route"],
)
RPC_DURATION = Histogram(
    "crm_rpc_duration_seconds",
    "Time a service took to answer an RPC, by method and outcome (ok or the exception's name).",
    ["service", "method", "outcome"],
)
RPC_CALL_DURATION = Histogram(
    "crm_rpc_call_duration_seconds",
    "Time a caller waited on another service's RPC, by target service, method and outcome.",
    ["service", "target", "method", "outcome"],
)
EVENTS_PUBLISHED = Counter(
    "crm_events_published_total",
    "Events a producer published to the broker (right after commit or by the relay).",
    ["service", "event_type"],
)
EVENTS_CONSUMED = Counter(
    "crm_events_consumed_total",
    "Events a consumer took in, by type and outcome: applied, or repeated (applied before).",
    ["service", "event_type", "outcome"],
)
EVENTS_FAILED = Counter(
    "crm_events_failed_total",
    "Events that failed, by type and reason: publish (left to the relay), invalid (not an "
    "event: a dead letter), retry (kept to be tried again), dead (a dead letter), requeued "
    "(the failure could not be recorded: back on the queue).",
    ["service", "event_type", "reason"],
)

UNKNOWN = "unknown"


class Readings:
    """Gauges read at scrape time. `watch(owner, service, name, help, read)`: `read()`
    answers a list of (labels dict, value); `forget(owner)` when the owner stops. A reading
    that fails is left out of that scrape (and logged)."""

    def __init__(self):
        self.watched = {}
        self.lock = threading.Lock()

    def watch(self, owner, service, name, documentation, read):
        with self.lock:
            # One reading per service and name: two containers of one service in one
            # process (tests) would otherwise repeat a series.
            self.watched[(service, name)] = (owner, documentation, read)

    def forget(self, owner):
        with self.lock:
            for key in [key for key, value in self.watched.items() if value[0] is owner]:
                del self.watched[key]

    def describe(self):
        return []  # unknown until read; keeps the registry from reading at registration

    def collect(self):
        with self.lock:
            watched = sorted(self.watched.items(), key=lambda item: item[0])
        families = {}
        for (service, name), (_, documentation, read) in watched:
            try:
                values = read()
            except Exception as exc:  # the database or broker is away: the log says so
                log.warning("metric %s of %s not read: %s", name, service, exc)
                continue
            for labels, value in values:
                if name not in families:
                    families[name] = GaugeMetricFamily(
                        name, documentation, labels=["service", *labels]
                    )
                families[name].add_metric([service, *labels.values()], value)
        return list(families.values())


@contextlib.contextmanager
def timed_call(proxy, target, method):
    """Observe how long the worker holding `proxy` waits on `target.method`, by outcome."""
    service = getattr(getattr(proxy, "worker_ctx", None), "service_name", None)
    service = service if isinstance(service, str) else UNKNOWN
    started = time.monotonic()
    outcome = "ok"
    try:
        yield
    except BaseException as exc:  # eventlet's Timeout too: a call that did not answer
        outcome = type(exc).__name__
        raise
    finally:
        RPC_CALL_DURATION.labels(service, target, method, outcome).observe(
            time.monotonic() - started
        )


READINGS = Readings()
REGISTRY.register(READINGS)


class _Server:
    """One HTTP server per (host, port) in a process, alive while a container uses it."""

    servers = {}
    lock = threading.Lock()

    @classmethod
    def acquire(cls, host, port):
        with cls.lock:
            entry = cls.servers.get((host, port))
            if entry is None:
                sock = eventlet.listen((host, port))
                thread = eventlet.spawn(
                    wsgi.server, sock, make_wsgi_app(REGISTRY), log_output=False, debug=False
                )
                entry = cls.servers[(host, port)] = [sock, thread, 0]
                log.info("metrics on http://%s:%d/metrics", host, sock.getsockname()[1])
            entry[2] += 1
            return entry[0].getsockname()[1]

    @classmethod
    def release(cls, host, port):
        with cls.lock:
            entry = cls.servers.get((host, port))
            if entry is None:
                return
            entry[2] -= 1
            if entry[2] == 0:
                del cls.servers[(host, port)]
                entry[1].kill()
                entry[0].close()


class Metrics(DependencyProvider):
    """Serves /metrics for its container, with the depth of its event handlers' queues.

    A port another process holds (a second instance on the same host with the
    same CRM_METRICS_PORT) is logged, and the service runs without metrics
    rather than not at all.
    """

    def setup(self):
        config = self.container.config
        self.host = config.get("CRM_METRICS_HOST", "127.0.0.1")
        self.port = config.get("CRM_METRICS_PORT", 0)
        self.serving = False

    def start(self):
        queues = sorted(
            entrypoint.queue.name
            for entrypoint in self.container.entrypoints
            if isinstance(entrypoint, EventHandler)
        )
        if queues:
            watch(
                self,
                self.container.service_name,
                "crm_consumer_queue_messages",
                "Events waiting in each of the service's event handler queues (consumer lag).",
                lambda: queue_depths(self.container.config["AMQP_URI"], queues),
            )
        if not self.port:
            return
        try:
            _Server.acquire(self.host, self.port)
        except OSError as exc:
            log.error(
                "no metrics: cannot listen on %s:%d (%s); give each instance on a host its "
                "own CRM_METRICS_PORT",
                self.host,
                self.port,
                exc,
            )
            return
        self.serving = True

    def stop(self):
        forget(self)
        if self.serving:
            _Server.release(self.host, self.port)
            self.serving = False

    def kill(self):
        self.stop()


def watch(owner, service, name, documentation, read):
    """Add a gauge read at scrape time (see Readings), until `forget(owner)`."""
    READINGS.watch(owner, service, name, documentation, read)


def forget(owner):
    READINGS.forget(owner)


def queue_depths(amqp_uri, queues):
    """[({"queue": name}, messages ready)] of the queues that exist, asked passively."""
    depths = []
    with Connection(amqp_uri, connect_timeout=2) as connection:
        for name in queues:
            channel = connection.channel()
            try:
                _, messages, _ = channel.queue_declare(queue=name, passive=True)
            except ChannelError:  # not declared yet: its consumer never started
                continue
            finally:
                with contextlib.suppress(Exception):
                    channel.close()
            depths.append(({"queue": name}, messages))
    return depths
