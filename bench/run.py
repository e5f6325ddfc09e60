"""Benchmarks: each figure beside a baseline measured in the same run, on the same broker.

    make bench            (or: python -m bench.run [--events N] [--calls N])

It makes a throwaway RabbitMQ vhost and data directory, starts the services
it measures as `crm run NAME` processes (as make run does), and prints:

- event backlog applied to the reports view, against raw kombu consume + ack;
- customers created over RPC (each one a transaction with its outbox row and
  a confirmed publish after commit), against the same service's `health` RPC;
- raw kombu publish with publisher confirms, for reference.

Figures swing by 2x between runs on a small machine; the ratios are what to
compare. Results also go to bench/results/latest.json.
"""

import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import quote, urlsplit, urlunsplit  # noqa: E402

import requests  # noqa: E402
from kombu import Connection, Exchange, Producer, Queue  # noqa: E402
from nameko.standalone.rpc import ClusterRpcProxy  # noqa: E402

from bench import customers  # noqa: E402
from crm_common.config import from_env  # noqa: E402
from crm_common.envelope import make_envelope  # noqa: E402
from tests.support.waiting import free_port, wait_for  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
AMQP_URI = os.environ.get("CRM_BENCH_AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/")
RABBIT_API_URI = os.environ.get("CRM_BENCH_RABBIT_API_URI", "http://guest:guest@127.0.0.1:15672")
BENCH_TOKEN = "bench-admin-token-0123456789"


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

    def queue_exists(self, queue):
        response = requests.get(
            f"{self.api}/api/queues/{self.name}/{queue}", auth=self.auth, timeout=10
        )
        return response.status_code == 200


class Services:
    """`crm run NAME` processes sharing one environment."""

    def __init__(self, env):
        self.env = env
        self.processes = {}

    def start(self, name):
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "crm_common.cli", "run", name],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self, name):
        process = self.processes.pop(name)
        process.terminate()
        process.wait(timeout=30)

    def stop_all(self):
        for name in list(self.processes):
            self.stop(name)


def answers(rpc, service):
    try:
        getattr(rpc, service).health()
    except Exception:
        return False
    return True


def raw_publish(amqp_uri, count):
    exchange = Exchange("bench.raw", type="topic", durable=True)
    queue = Queue("bench.raw", exchange, routing_key="#", durable=True)
    body = {"n": 0, "payload": "x" * 400}
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        producer = Producer(connection)
        queue(connection.default_channel).declare()
        started = time.perf_counter()
        for number in range(count):
            body["n"] = number
            producer.publish(
                body, exchange=exchange, routing_key="raw", serializer="json", delivery_mode=2
            )
        return count / (time.perf_counter() - started)


def raw_consume(amqp_uri, count):
    queue = Queue(
        "bench.raw",
        Exchange("bench.raw", type="topic", durable=True),
        routing_key="#",
        durable=True,
    )
    received = 0

    def on_message(body, message):
        nonlocal received
        message.ack()
        received += 1

    with Connection(amqp_uri) as connection:
        with connection.Consumer(
            queue, callbacks=[on_message], accept=["json"], prefetch_count=100
        ):
            started = time.perf_counter()
            while received < count:
                connection.drain_events(timeout=10)
            return count / (time.perf_counter() - started)


def publish_backlog(amqp_uri, count):
    exchange = Exchange("customers.events", type="topic", durable=True)
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        producer = Producer(connection)
        for _ in range(count):
            customer_id = str(uuid.uuid4())
            body = make_envelope(
                event_type="customer_created",
                producer="customers",
                aggregate_id=customer_id,
                sequence=1,
                data={
                    "customer_id": customer_id,
                    "name": "Bench",
                    "status": "lead",
                    "owner": f"owner-{customer_id[0]}",
                    "created_at": datetime.now(UTC).isoformat(),
                },
            )
            producer.publish(
                body,
                exchange=exchange,
                routing_key="customer_created",
                serializer="json",
                delivery_mode=2,
            )


def applied(rpc):
    return rpc.reports.customers_by_status_owner()["total"]


def rpc_rate(rpc, call, count):
    started = time.perf_counter()
    for number in range(count):
        call(rpc, number)
    return count / (time.perf_counter() - started)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=3000, help="backlog size")
    parser.add_argument("--calls", type=int, default=500, help="sequential RPC calls")
    parser.add_argument("--customers", type=int, default=100_000, help="rows of the CSV import")
    args = parser.parse_args(argv)
    # amqp warns about confirms that arrive while a channel closes: expected here.
    logging.getLogger("amqp").setLevel(logging.ERROR)

    with Vhost() as vhost, tempfile.TemporaryDirectory() as data_dir:
        env = {key: value for key, value in os.environ.items() if not key.startswith("CRM_")}
        env.update(
            CRM_AMQP_URI=vhost.amqp_uri,
            CRM_DATA_DIR=data_dir,
            CRM_LOG_LEVEL="WARNING",
            CRM_ADMIN_TOKEN=BENCH_TOKEN,
            CRM_GATEWAY_ADDRESS=f"127.0.0.1:{free_port()}",
        )
        config = from_env(env)
        services = Services(env)
        try:
            figures = run(args, vhost, services, config)
        finally:
            services.stop_all()
    report(figures)
    return 0


def run(args, vhost, services, config):
    figures = {}
    figures["raw_publish_confirmed_per_s"] = raw_publish(vhost.amqp_uri, args.events)
    figures["raw_consume_ack_per_s"] = raw_consume(vhost.amqp_uri, args.events)

    services.start("reports")
    services.start("customers")
    with ClusterRpcProxy(config) as rpc:
        wait_for(lambda: answers(rpc, "reports") and answers(rpc, "customers"), timeout=60)

        # The backlog: reports' queue exists, the service is down, events pile up.
        services.stop("reports")
        publish_backlog(vhost.amqp_uri, args.events)
        services.start("reports")
        # Timed from the first event applied, so the process's start-up is not counted.
        wait_for(lambda: answers(rpc, "reports") and applied(rpc) > 0, timeout=120, interval=0.01)
        first, started = applied(rpc), time.perf_counter()
        wait_for(lambda: applied(rpc) >= args.events, timeout=600, interval=0.05)
        figures["events_applied_per_s"] = (args.events - first) / (time.perf_counter() - started)

        figures["rpc_health_per_s"] = rpc_rate(rpc, lambda r, n: r.customers.health(), args.calls)
        figures["rpc_create_customer_per_s"] = rpc_rate(
            rpc,
            lambda r, n: r.customers.create_customer({"name": f"Bench {n}", "owner": "bench"}),
            args.calls,
        )
    services.stop("reports")  # the import's events would compete for the two cores
    figures.update(customers_at_size(args, services, config))
    return figures


def customers_at_size(args, services, config):
    """Import `args.customers` rows through the gateway, then search among them."""
    base_url = f"http://{config['CRM_GATEWAY_ADDRESS']}"
    services.start("gateway")
    wait_for(lambda: gateway_ready(base_url), timeout=60, interval=0.05)
    figures = {"sqlite_insert_rows_per_s": customers.sqlite_insert_rate(args.customers)}
    text = customers.generate_csv(args.customers)
    figures["import_rows_per_s"], result = customers.import_rate(base_url, BENCH_TOKEN, text)
    print(
        f"import: {result['created']} created, {result['duplicates']} duplicates", file=sys.stderr
    )
    # Searches are timed once the import's events are out, not while the relay sends them.
    db_url = config["CRM_CUSTOMERS_DB_URL"]
    wait_for(lambda: customers.unsent_events(db_url) == 0, timeout=900, interval=1)
    health = customers.latencies_ms(base_url, BENCH_TOKEN, ["/health"], 200)
    searches = customers.latencies_ms(base_url, BENCH_TOKEN, customers.search_paths(), 15)
    figures["health_p95_ms"] = customers.p95(health)
    figures["search_p95_ms"] = customers.p95(searches)
    return figures


def gateway_ready(base_url):
    try:
        return requests.get(f"{base_url}/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False


ROWS = [
    (
        "events applied to the reports view, from a backlog",
        "events_applied_per_s",
        "raw_consume_ack_per_s",
        "raw kombu consume + ack",
    ),
    (
        "customers created over RPC (write + outbox + confirmed publish)",
        "rpc_create_customer_per_s",
        "rpc_health_per_s",
        "health RPC on the same service",
    ),
    (
        "customers imported from CSV through the gateway (rows/s)",
        "import_rows_per_s",
        "sqlite_insert_rows_per_s",
        "plain SQLite insert of as many rows",
    ),
    (
        "customer search at that size through the gateway, p95 (ms)",
        "search_p95_ms",
        "health_p95_ms",
        "GET /health on the same gateway, p95",
    ),
    ("raw kombu publish, persistent, confirmed", "raw_publish_confirmed_per_s", None, ""),
]


def report(figures):
    lines = [f"{'measure':66} {'figure':>9} {'baseline':>9} {'ratio':>6}  baseline is"]
    for label, key, base_key, base_label in ROWS:
        value = figures[key]
        if base_key:
            base = figures[base_key]
            lines.append(f"{label:66} {value:9.0f} {base:9.0f} {value / base:6.2f}  {base_label}")
        else:
            lines.append(f"{label:66} {value:9.0f}")
    print("\n".join(lines))
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {
        "ran_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "figures": {key: round(value, 1) for key, value in figures.items()},
    }
    (RESULTS / "latest.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
