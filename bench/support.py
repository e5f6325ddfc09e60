"""What the benchmarks share: a private vhost, `crm run` processes, raw broker baselines,
publishing events as their producers would, and timing HTTP requests."""

import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import eventlet
import requests
from kombu import Connection, Exchange, Producer, Queue

from bench.memory import RUN_PEAKS
from bench.traffic import schedule
from tests.support.processes import Processes
from tests.support.waiting import free_port

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
AMQP_URI = os.environ.get("CRM_BENCH_AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/")
RABBIT_API_URI = os.environ.get("CRM_BENCH_RABBIT_API_URI", "http://guest:guest@127.0.0.1:15672")
BENCH_TOKEN = "bench-admin-token-0123456789"
STOP_SECONDS = 30
# How long a service may take to start: minutes, not seconds, on a machine other work shares.
START_SECONDS = 180


class Vhost:
    """A private vhost, so the benchmark never meets a running system's queues."""

    def __init__(self):
        self.name = f"crm_bench_{uuid.uuid4().hex[:8]}"
        api = urlsplit(RABBIT_API_URI)
        self.api = urlunsplit(
            api._replace(netloc=api.hostname + (f":{api.port}" if api.port else ""))
        )
        self.auth = (api.username or "guest", api.password or "guest")
        broker = urlsplit(AMQP_URI)
        self.amqp_uri = urlunsplit(broker._replace(path="/" + quote(self.name, safe="")))

    def __enter__(self):
        self._put(f"/api/vhosts/{self.name}", {})
        self._put(
            f"/api/permissions/{self.name}/{self.auth[0]}",
            {"configure": ".*", "write": ".*", "read": ".*"},
        )
        return self

    def __exit__(self, *exc):
        requests.delete(f"{self.api}/api/vhosts/{self.name}", auth=self.auth, timeout=10)

    def _put(self, path, body):
        requests.put(f"{self.api}{path}", json=body, auth=self.auth, timeout=10).raise_for_status()

    def broker_version(self):
        overview = requests.get(f"{self.api}/api/overview", auth=self.auth, timeout=10).json()
        return overview.get("rabbitmq_version")


def bench_env(vhost, data_dir, **settings):
    """The environment of the services a benchmark starts: none of the caller's CRM_ settings."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CRM_")}
    env.update(
        dict(
            CRM_AMQP_URI=vhost.amqp_uri,
            CRM_DATA_DIR=str(data_dir),
            # CRM_BENCH_LOG_LEVEL=INFO logs every RPC's duration and every event (slower).
            CRM_LOG_LEVEL=os.environ.get("CRM_BENCH_LOG_LEVEL", "WARNING"),
            CRM_ADMIN_TOKEN=BENCH_TOKEN,
            CRM_GATEWAY_ADDRESS=f"127.0.0.1:{free_port()}",
            # Several processes on one host, and other work beside them: no metrics ports.
            CRM_METRICS_PORT="0",
            # A bench sends far more than a client's 600 requests a minute: timing 429s
            # would say nothing of the reports.
            CRM_RATE_LIMIT_PER_MINUTE="0",
        ),
        **settings,  # a part's own settings win over those defaults
    )
    return env


class Services(Processes):
    """The `crm run` processes of a benchmark (tests/support/processes.py); each one's peak
    memory is noted in `peaks` as it is stopped (the run's, by default). Their logs go to
    bench/results/<logs>-logs/NAME.log, emptied first: what to read when a part fails."""

    def __init__(self, env, logs, peaks=RUN_PEAKS):
        log_dir = RESULTS / f"{logs}-logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        for old in log_dir.glob("*.log"):
            old.unlink()
        super().__init__(env, log_dir)
        self.peaks = peaks

    def stop(self, name, seconds=STOP_SECONDS):
        """Ask the process to stop; kill it if it has not after `seconds`."""
        self.peaks.note(name, self.running[name].pid)
        try:
            super().stop(name, seconds)
        except AssertionError:
            # A service busy with a backlog on a loaded machine may not finish its
            # workers in time; the bench has what it measured, so it goes.
            print(f"bench: {name} did not stop in {seconds} s; killed", file=sys.stderr)

    def stop_all(self):
        for name in list(self.running):
            self.stop(name)


def answers(rpc, service):
    try:
        getattr(rpc, service).health()
    except Exception:
        return False
    return True


def gateway_ready(base_url):
    try:
        return requests.get(f"{base_url}/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False


RAW_EXCHANGE = Exchange("bench.raw", type="topic", durable=True)
RAW_QUEUE = Queue("bench.raw", RAW_EXCHANGE, routing_key="#", durable=True)


def raw_publish(amqp_uri, count):
    body = {"n": 0, "payload": "x" * 400}
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        producer = Producer(connection)
        RAW_QUEUE(connection.default_channel).declare()
        started = time.perf_counter()
        for number in range(count):
            body["n"] = number
            producer.publish(
                body, exchange=RAW_EXCHANGE, routing_key="raw", serializer="json", delivery_mode=2
            )
        return count / (time.perf_counter() - started)


def raw_consume(amqp_uri, count):
    received = 0

    def on_message(body, message):
        nonlocal received
        message.ack()
        received += 1

    with Connection(amqp_uri) as connection:
        with connection.Consumer(
            RAW_QUEUE, callbacks=[on_message], accept=["json"], prefetch_count=100
        ):
            started = time.perf_counter()
            while received < count:
                connection.drain_events(timeout=10)
            return count / (time.perf_counter() - started)


def raw_latencies_ms(amqp_uri, rate, seconds):
    """Milliseconds from publish to consume of messages published at `rate` per second for
    `seconds` on a schedule (persistent, confirmed, as events are), and consumed + acked
    by a consumer on its own connection: the broker's part of an event's way to a view."""
    queue = Queue(f"bench.raw.latency.{uuid.uuid4().hex[:8]}", RAW_EXCHANGE, routing_key="lag")
    plan = schedule(rate, seconds)
    timings = []

    def on_message(body, message):
        timings.append((time.time() - body["sent"]) * 1000)
        message.ack()

    with (
        Connection(amqp_uri) as consuming,
        Connection(amqp_uri, transport_options={"confirm_publish": True}) as publishing,
    ):
        queue(consuming.default_channel).declare()
        with consuming.Consumer(queue, callbacks=[on_message], accept=["json"], prefetch_count=100):

            def consume():
                while len(timings) < len(plan):
                    try:
                        consuming.drain_events(timeout=1)
                    except TimeoutError:
                        continue

            consumer = eventlet.spawn(consume)
            producer = Producer(publishing)
            started = time.perf_counter()
            for offset in plan:
                wait = started + offset - time.perf_counter()
                if wait > 0:
                    eventlet.sleep(wait)
                producer.publish(
                    {"sent": time.time(), "payload": "x" * 400},
                    exchange=RAW_EXCHANGE,
                    routing_key="lag",
                    serializer="json",
                    delivery_mode=2,
                )
            with eventlet.Timeout(60):
                consumer.wait()
        queue(consuming.default_channel).delete()
    return timings


def publish_events(amqp_uri, bodies):
    """Publish event envelopes as their producers do: exchange `<producer>.events`, routing
    key the event type, persistent, confirmed. Answers how many."""
    exchanges = {}
    count = 0
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        producer = Producer(connection)
        for body in bodies:
            name = f"{body['producer']}.events"
            exchange = exchanges.setdefault(name, Exchange(name, type="topic", durable=True))
            producer.publish(
                body,
                exchange=exchange,
                routing_key=body["event_type"],
                serializer="json",
                delivery_mode=2,
            )
            count += 1
    return count


def latencies_ms(base_url, token, paths, rounds, concurrency=1, before_each=None):
    """Milliseconds of each GET of `paths`, `rounds` times over, `concurrency` at a time.

    `before_each()` runs before every request, untimed. Answers the timings and the
    statuses other than 200 that came back ({status: count})."""
    sessions = eventlet.Queue()
    for _ in range(concurrency):
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        sessions.put(session)
    failures = {}

    def timed(path):
        session = sessions.get()
        try:
            if before_each:
                before_each()
            started = time.perf_counter()
            response = session.get(base_url + path, timeout=60)
            elapsed = (time.perf_counter() - started) * 1000
        finally:
            sessions.put(session)
        if response.status_code != 200:
            failures[response.status_code] = failures.get(response.status_code, 0) + 1
        return elapsed

    pool = eventlet.GreenPool(concurrency)
    timings = list(pool.imap(timed, [path for _ in range(rounds) for path in paths]))
    return timings, failures


def percentile(values, share):
    """The value below which `share` percent (1 to 99) of `values` fall, never beyond the
    slowest (the inclusive method: few values are not extrapolated)."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[share - 1]


def p95(values):
    return percentile(values, 95)


def spread(values):
    """p50, p95, p99 and the largest of `values`, and how many there were."""
    return {
        "count": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values),
    }
