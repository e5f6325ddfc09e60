"""Benchmarks: each figure beside a baseline measured in the same run, on the same broker.

    make bench   (or: python -m bench.run [--quick] [--only customers|reports|gateway|lag])

Each part makes a throwaway RabbitMQ vhost and data directory and starts the
services it measures as `crm run NAME` processes (as make run does).

Customers (SQLite, as make run keeps them, then again the creates over RPC and
the import with every service on PostgreSQL, as docker compose deploys them):
- a customer_created backlog applied to the reports view, against raw kombu
  consume + ack;
- customers created over RPC (each one a transaction with its outbox row and
  a confirmed publish after commit), against the same service's `health` RPC;
- a CSV import of --customers rows through the gateway, then searches among
  them, against plain SQLite inserts and the gateway's GET /health;
- raw kombu publish with publisher confirms, for reference.

Reports at size (PostgreSQL; bench/reports.py): --customers customers,
--deals deals with their stage history, --interactions interactions and
--tickets tickets; every report read through the gateway, cold and warm,
against GET /health; a backlog of deal and interaction events drained,
against raw kombu consume + ack; the rebuild once there is one.

The gateway under load (bench/gateway.py): report reads and customer creates
at 50 connections (wrk), against a bare Nameko `@http` endpoint
(bench/bare_http.py) served the same way, in the same run.

Lag (bench/lag.py): writes through the gateway at a steady --lag-rate on an
open-loop schedule, from the client's 2xx to the event applied in the reports
view, against raw AMQP publish to consume at the same rate.

Memory: the peak resident size of each service process over the whole run,
against a bare Nameko service's (bench/bare_service.py).

The summary table (bench/summary.py) puts every figure beside its baseline,
their ratio and the issue's target. Figures swing by 2x between runs on a small
machine; the ratios are what to compare. Results also go to
bench/results/latest.json.
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
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime  # noqa: E402

from nameko.standalone.rpc import ClusterRpcProxy  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from bench import bare_service, customers, gateway, lag, memory, reports, summary  # noqa: E402
from bench.memory import RUN_PEAKS  # noqa: E402
from bench.reports_data import History  # noqa: E402
from bench.reports_dataset import ADMIN_URL  # noqa: E402
from bench.support import (  # noqa: E402
    BENCH_TOKEN,
    RESULTS,
    START_SECONDS,
    Services,
    Vhost,
    answers,
    bench_env,
    gateway_ready,
    latencies_ms,
    p95,
    publish_events,
    raw_consume,
    raw_publish,
)
from bench.system import running_system  # noqa: E402
from crm_common.config import from_env  # noqa: E402
from crm_common.envelope import utcnow  # noqa: E402
from tests.support.waiting import wait_for  # noqa: E402

# --quick: every size small, for a check that the benchmark runs (a minute or two).
QUICK = {
    **reports.QUICK,
    "events": 1000,
    "calls": 100,
    "backlog": 2000,
    "reads": 50,
    "cold_reads": 10,
    "load_seconds": 3,
    "lag_seconds": 10,
}
PARTS = ("customers", "reports", "gateway", "lag")


def arguments(argv=None):
    """The command line's settings; with --quick, the small sizes unless given."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=3000, help="customer_created backlog")
    parser.add_argument("--calls", type=int, default=500, help="sequential RPC calls")
    parser.add_argument(
        "--customers",
        type=int,
        default=reports.SIZES["customers"],
        help="rows of the CSV import, and customers of the reports data set",
    )
    for kind in ("deals", "interactions", "tickets"):
        parser.add_argument(
            f"--{kind}",
            type=int,
            default=reports.SIZES[kind],
            help=f"{kind} of the reports data set",
        )
    parser.add_argument("--backlog", type=int, default=20_000, help="deal and interaction events")
    parser.add_argument("--reads", type=int, default=300, help="warm reads of each report")
    parser.add_argument("--cold-reads", type=int, default=40, help="cold reads of each report")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a check")
    parser.add_argument(
        "--load-seconds", type=int, default=15, help="seconds of each load on the gateway"
    )
    parser.add_argument("--lag-rate", type=int, default=200, help="writes per s of the lag part")
    parser.add_argument("--lag-seconds", type=int, default=60, help="how long the lag part writes")
    parser.add_argument("--only", choices=PARTS, help="run one part")
    parser.add_argument(
        "--reseed", action="store_true", help="seed the reports data set again, not from cache"
    )
    if parser.parse_known_args(argv)[0].quick:
        # Small defaults; a size given on the command line still wins, even the full one.
        parser.set_defaults(**QUICK)
    return parser.parse_args(argv)


def main(argv=None):
    args = arguments(argv)
    # amqp warns about confirms that arrive while a channel closes: expected here.
    logging.getLogger("amqp").setLevel(logging.ERROR)

    figures = {}
    if args.only in (None, "gateway"):
        figures.update(
            gateway.run(args.load_seconds, gateway.QUICK if args.quick else gateway.SIZES)
        )
    if args.only in (None, "customers"):
        figures.update(customers_part(args))
    if args.only in (None, "reports"):
        sizes = {kind: getattr(args, kind) for kind in reports.SIZES}
        figures.update(
            reports.run(sizes, args.backlog, args.reads, args.cold_reads, reseed=args.reseed)
        )
    if args.only in (None, "lag"):
        figures.update(lag.run(args.lag_rate, args.lag_seconds))
    # Every service process of the run has been stopped, so its peak is noted.
    with Vhost() as vhost:
        bare_service.peak_kib(vhost.amqp_uri, RUN_PEAKS)
    figures.update(RUN_PEAKS.figures())
    report(figures, args)
    return 0


def customers_part(args):
    with Vhost() as vhost, tempfile.TemporaryDirectory() as data_dir:
        env = bench_env(vhost, data_dir)
        config = from_env(env)
        services = Services(env, "customers")
        try:
            figures = run(args, vhost, services, config)
        finally:
            services.stop_all()
    figures.update(customers_on_postgres(args))
    return figures


def customers_on_postgres(args):
    """Creates over RPC and the CSV import again, with every service on PostgreSQL as
    docker compose deploys them (bench/system.py)."""
    figures = {}
    with running_system("customers-pg") as system, ClusterRpcProxy(system.config) as rpc:
        figures["rpc_health_pg_per_s"] = rpc_rate(
            rpc, lambda r, n: r.customers.health(), args.calls
        )
        figures["rpc_create_customer_pg_per_s"] = rpc_rate(
            rpc,
            lambda r, n: r.customers.create_customer({"name": f"Bench {n}", "owner": "bench"}),
            args.calls,
        )
        system.services.stop("reports")  # as on SQLite: the import's events would compete
        figures["pg_insert_rows_per_s"] = customers.postgres_insert_rate(
            args.customers, system.db_urls["customers"]
        )
        text_ = customers.generate_csv(args.customers)
        figures["import_rows_pg_per_s"], result = customers.import_rate(
            system.base_url, BENCH_TOKEN, text_
        )
    print(
        f"import on PostgreSQL: {result['created']} created, {result['duplicates']} duplicates",
        file=sys.stderr,
    )
    return figures


def applied(rpc):
    return rpc.reports.customers_by_status_owner()["total"]


def rpc_rate(rpc, call, count):
    started = time.perf_counter()
    for number in range(count):
        call(rpc, number)
    return count / (time.perf_counter() - started)


def run(args, vhost, services, config):
    figures = {}
    figures["raw_publish_confirmed_per_s"] = raw_publish(vhost.amqp_uri, args.events)
    figures["raw_consume_ack_per_s"] = raw_consume(vhost.amqp_uri, args.events)

    services.start("reports")
    services.start("customers")
    with ClusterRpcProxy(config) as rpc:
        wait_for(
            lambda: answers(rpc, "reports") and answers(rpc, "customers"), timeout=START_SECONDS
        )

        # The backlog: reports' queue exists, the service is down, events pile up.
        services.stop("reports")
        publish_events(vhost.amqp_uri, History(utcnow()).customer_events(args.events))
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
    wait_for(lambda: gateway_ready(base_url), timeout=START_SECONDS, interval=0.05)
    figures = {"sqlite_insert_rows_per_s": customers.sqlite_insert_rate(args.customers)}
    text_ = customers.generate_csv(args.customers)
    figures["import_rows_per_s"], result = customers.import_rate(base_url, BENCH_TOKEN, text_)
    print(
        f"import: {result['created']} created, {result['duplicates']} duplicates", file=sys.stderr
    )
    # Searches are timed once the import's events are out, not while the relay sends them.
    db_url = config["CRM_CUSTOMERS_DB_URL"]
    wait_for(lambda: customers.unsent_events(db_url) == 0, timeout=900, interval=1)
    health, failed = latencies_ms(base_url, BENCH_TOKEN, ["/health"], 200)
    searches, failed_searches = latencies_ms(base_url, BENCH_TOKEN, customers.search_paths(), 15)
    if failed or failed_searches:
        raise SystemExit(f"bench: searches failed: {failed or failed_searches}")
    figures["health_p95_ms"] = p95(health)
    figures["search_p95_ms"] = p95(searches)
    return figures


def rows(figures):
    """The summary's rows: every part's, then each service's peak memory."""
    return [
        *customers.ROWS,
        *gateway.ROWS,
        *reports.ROWS,
        *lag.ROWS,
        *memory.rows(figures),
    ]


def report(figures, args):
    entries = summary.build(rows(figures), figures)
    lines = []
    if "gateway_reads_per_s" in figures:
        lines += [*gateway.notes(figures), ""]
    if "reports_reads" in figures:
        lines += [*reads_table(figures["reports_reads"]), ""]
    lines += summary.lines(entries)
    print("\n".join(lines))
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {
        "ran_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(figures),
        "arguments": vars(args),
        "summary": rounded(entries),
        "figures": rounded(figures),
    }
    (RESULTS / "latest.json").write_text(json.dumps(result, indent=2) + "\n")


def reads_table(reads):
    """Each report read: its size, p50/p95/p99 (ms) cold and warm, p95 over /health's p95."""
    cold_base, warm_base = reads["health_cold"]["p95"], reads["health_warm"]["p95"]
    lines = [
        f"{'GET (through the gateway)':56} {'bytes':>7}  {'cold p50':>8} {'p95':>6} {'p99':>6}"
        f" {'x':>5}  {'warm p50':>8} {'p95':>6} {'p99':>6} {'x':>5}  not 200"
    ]
    for path, timing in reads.items():
        if path.startswith("health"):
            name = "/health (baseline)"
            cold, warm = (timing, None) if path == "health_cold" else (None, timing)
        else:
            name, cold, warm = path, timing["cold"], timing.get("warm")
        line = f"{name[:56]:56} {timing.get('bytes', ''):>7}"
        failures = {}
        for found, base in ((cold, cold_base), (warm, warm_base)):
            if found is None:
                line += f"  {'':>8} {'':>6} {'':>6} {'':>5}"
                continue
            line += (
                f"  {found['p50']:8.1f} {found['p95']:6.1f} {found['p99']:6.1f}"
                f" {found['p95'] / base:5.1f}"
            )
            for status, count in found["failures"].items():
                failures[status] = failures.get(status, 0) + count
        lines.append(line + "  " + ", ".join(f"{n}x {code}" for code, n in failures.items()))
    return lines


def machine(figures):
    found = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        # Other work on the machine moves the figures (not their ratios much): 1, 5, 15 min.
        "load_average": [round(load, 2) for load in os.getloadavg()],
    }
    if "reports_broker" in figures:
        found["rabbitmq"] = figures["reports_broker"]
        engine = create_engine(ADMIN_URL)
        with engine.connect() as connection:
            found["postgresql"] = connection.execute(text("SHOW server_version")).scalar()
        engine.dispose()
    return found


def rounded(value):
    """Floats to four significant digits (a ratio of 0.003 stays one), for the JSON."""
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [rounded(item) for item in value]
    if isinstance(value, float):
        return float(f"{value:.4g}")
    return value


if __name__ == "__main__":
    sys.exit(main())
