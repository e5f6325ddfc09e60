"""Reports at size (issue #6): report reads through the gateway, a backlog drained, a rebuild.

Targets, over 100,000 customers, 200,000 deals with their stage history and
500,000 interactions (and some tickets): each report read under 50 ms p95
through the gateway; events applied from a backlog at 2,000/s or more; a full
rebuild in under 2 minutes.

1. A reports database at that size (bench/reports_seed.py). It stays behind
   as a PostgreSQL template, so later runs copy it in seconds; it is made
   again when the sizes or the code behind it change.
2. The reports service and the gateway run as `crm run` processes on a copy
   of it, in their own vhost; segments are recomputed once over RPC.
3. Each report is read through the gateway: warm (its answer cached) by
   CONCURRENCY clients at once, and cold (the cache emptied, in Redis and in
   the reports' memory, before each read, as any event does) one at a time. The baseline is the
   gateway's GET /health with the same client and concurrency.
4. A backlog of deal and interaction events, published while reports is
   stopped, is drained once it starts; the baseline is raw kombu consume +
   ack of as many messages on the same broker, and beside it a do-nothing
   Nameko `@event_handler` (bench/bare_events.py) with the reports' worker
   limit drains as many: the ceiling of one worker per message.
5. A full rebuild from the producers' logs (their copies hold the data set's events),
   before the backlog (whose events are in no log); the numbers must come out the same.
"""

import random
import sys
import tempfile
import time
from datetime import timedelta
from urllib.parse import quote

import eventlet
import redis
import requests
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy import text

from bench import bare_events
from bench.reports_data import History
from bench.reports_dataset import PRODUCERS, seeded_copy
from bench.summary import Row, at_least, under
from bench.support import (
    BENCH_TOKEN,
    RESULTS,
    START_SECONDS,
    Services,
    Vhost,
    answers,
    bench_env,
    gateway_ready,
    latencies_ms,
    percentile,
    publish_events,
    raw_consume,
    raw_publish,
    spread,
)
from crm_common.config import db_url_key, from_env
from crm_common.db import make_engine
from crm_common.envelope import utcnow
from tests.support.waiting import wait_for

CONCURRENCY = 4
BASE = "/api/v1/reports"
SIZES = {"customers": 100_000, "deals": 200_000, "interactions": 500_000, "tickets": 20_000}
QUICK = {"customers": 2_000, "deals": 4_000, "interactions": 10_000, "tickets": 400}
TARGET_P95_MS = 50
TARGET_EVENTS_PER_S = 2000
TARGET_REBUILD_S = 120
# The backlog is drained for this long at most: the rate is what matters, not the end.
DRAIN_SECONDS = 90
PROBE_SECONDS = 0.25
# The services' logs of the last run, to see what a figure hides (retries, slow requests).
LOGS = RESULTS / "reports-logs"


ROWS = [
    Row(
        "report reads at size, cold (after a change), the slowest report's p95 (ms)",
        "reports_read_cold_p95_ms",
        "reports_health_cold_p95_ms",
        "GET /health, 1 client, p95",
        target=under(TARGET_P95_MS),
    ),
    Row(
        f"report reads at size, warm (cached), {CONCURRENCY} clients, the slowest p95 (ms)",
        "reports_read_warm_p95_ms",
        "reports_health_warm_p95_ms",
        f"GET /health, {CONCURRENCY} clients, p95",
        target=under(TARGET_P95_MS),
    ),
    Row(
        "deal + interaction events applied from a backlog at size, PostgreSQL (per s)",
        "reports_backlog_per_s",
        "reports_raw_consume_ack_per_s",
        "raw kombu consume + ack",
        target=at_least(TARGET_EVENTS_PER_S),
    ),
    Row(
        "... a do-nothing Nameko @event_handler on as large a backlog (per s)",
        "reports_bare_handler_per_s",
        "reports_raw_consume_ack_per_s",
        "raw kombu consume + ack",
    ),
    Row(
        "the funnel read while that backlog drains, p95 (ms)",
        "reports_read_while_draining_p95_ms",
        "reports_health_cold_p95_ms",
        "GET /health, 1 client, p95",
    ),
    Row(
        "... the slowest of those reads (ms)",
        "reports_read_while_draining_max_ms",
        "reports_health_cold_p95_ms",
        "GET /health, 1 client, p95",
    ),
    Row("segments recomputed at size, over RPC (s)", "reports_segments_recompute_s"),
    Row("... reports unresponsive after that RPC returned (s)", "reports_segments_after_s"),
    Row(
        "today's funnel snapshot ready, from the start of reports (s)", "reports_funnel_snapshot_s"
    ),
    Row(
        "reports data set seeded (events per s)",
        "reports_seed_events_per_s",
        "reports_effect_functions_events_per_s",
        "effect functions, a transaction per event",
    ),
    Row(
        "full rebuild of the reports views at size (s)",
        "reports_rebuild_s",
        "reports_seed_s",
        "seeding the same data set (s)",
        target=under(TARGET_REBUILD_S),
    ),
]


def read_paths(now):
    """{report: [its plain read, a filtered one]} through the gateway."""
    month = now.strftime("%Y-%m")
    year_ago = (now - timedelta(days=365)).strftime("%Y-%m")
    return {
        "funnel": [f"{BASE}/funnel", f"{BASE}/funnel?owner=owner-3"],
        "sales": [f"{BASE}/sales", f"{BASE}/sales?owner=owner-3&from={year_ago}&to={month}"],
        "segments": [f"{BASE}/segments", f"{BASE}/segments/high_value/customers?limit=50"],
        "satisfaction": [f"{BASE}/satisfaction", f"{BASE}/satisfaction?group_by=month"],
        "service": [f"{BASE}/service", f"{BASE}/service?agent=agent-3"],
        "customers": [f"{BASE}/customers", f"{BASE}/customers.csv"],
    }


def time_travel_paths(now):
    """Answers as of a past moment: computed from the facts, not from the totals."""
    moment = quote((now - timedelta(days=30)).isoformat(timespec="seconds"))
    return [f"{BASE}/funnel?as_of={moment}", f"{BASE}/segments?as_of={moment}"]


def run(sizes, backlog, warm_rounds, cold_rounds, reseed=False):
    """Seed (or reuse) the data set, start reports and the gateway on a copy, measure."""
    with (
        seeded_copy(sizes, reseed=reseed) as (db_urls, seeding),
        Vhost() as vhost,
        tempfile.TemporaryDirectory() as data_dir,
    ):
        prefix = f"crm-{vhost.name}"
        env = bench_env(
            vhost,
            data_dir,
            CRM_REDIS_PREFIX=prefix,
            **{db_url_key(service): url for service, url in db_urls.items()},
        )
        db_url = db_urls["reports"]
        config = from_env(env)
        services = Services(env, "reports")
        bench = ReportsBench(config, services, db_url, prefix)
        try:
            figures = {
                "reports_seeded_at": seeding["seeded_at"],
                "reports_seed_events": sum(seeding["events"].values()),
                "reports_seed_s": seeding["seconds"],
                "reports_seed_events_per_s": sum(seeding["events"].values()) / seeding["seconds"],
                "reports_effect_functions_events_per_s": seeding["effect_functions_events_per_s"],
                "reports_copy_s": seeding["copy_seconds"],
            }
            figures.update(bench.measure(vhost, backlog, warm_rounds, cold_rounds))
        finally:
            services.stop_all()
            bench.forget_answers(everything=True)
            bench.engine.dispose()
        figures["reports_broker"] = vhost.broker_version()
    return figures


class ReportsBench:
    def __init__(self, config, services, db_url, prefix):
        self.config = config
        self.services = services
        self.engine = make_engine(db_url)
        self.redis = redis.Redis.from_url(config["CRM_REDIS_URL"])
        self.prefix = prefix
        self.base_url = f"http://{config['CRM_GATEWAY_ADDRESS']}"
        # The bench's RPC proxy while reports run.
        self.rpc = None
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {BENCH_TOKEN}"

    def measure(self, vhost, backlog, warm_rounds, cold_rounds):
        figures = {}
        runs = self.segment_runs()
        started = time.perf_counter()
        self.services.start("reports")
        self.services.start("gateway")
        with ClusterRpcProxy(self.config) as rpc:
            wait_for(lambda: answers(rpc, "reports"), timeout=120, message="reports")
            self.rpc = rpc
            wait_for(
                lambda: gateway_ready(self.base_url), timeout=START_SECONDS, message="the gateway"
            )
            # Its first segment recompute, due at start, holds the process: let it pass.
            wait_for(lambda: self.segment_runs() > runs, timeout=300, message="segments")
            # So is the first funnel snapshot, made at start (answers as of a past moment).
            wait_for(self.funnel_snapshots, timeout=300, message="the funnel snapshot")
            figures["reports_funnel_snapshot_s"] = time.perf_counter() - started
            settle(rpc)
            started = time.perf_counter()
            moved = rpc.reports.recompute_segments()["moved"]
            recompute = figures["reports_segments_recompute_s"] = time.perf_counter() - started
            after = figures["reports_segments_after_s"] = settle(rpc)
            say(
                f"segments recomputed in {recompute:.1f} s ({moved} moved); "
                f"reports answered promptly again {after:.1f} s later"
            )
            figures.update(self.reads(rpc, warm_rounds, cold_rounds))
            figures["reports_cache_rests"] = self.cache_rests()
            figures.update(rebuild_seconds(rpc, self))
            if backlog:
                figures.update(self.drain(rpc, vhost, backlog))
            self.rpc = None
        return figures

    # --- reads -------------------------------------------------------------------------

    def forget_answers(self, everything=False):
        """Delete the answers reports cached in Redis (every key of the run's, if `everything`)
        and, while reports run (`self.rpc`), those they hold in memory."""
        if self.rpc is not None:
            self.rpc.reports.forget_answers()
        pattern = f"{self.prefix}:*" if everything else f"{self.prefix}:reports:answers:*"
        keys = list(self.redis.scan_iter(pattern, count=1000))
        if keys:
            self.redis.delete(*keys)

    def latencies(self, paths, rounds, concurrency, cold=False):
        timings, failures = latencies_ms(
            self.base_url,
            BENCH_TOKEN,
            paths,
            rounds,
            concurrency,
            before_each=self.forget_answers if cold else None,
        )
        if failures:
            say(f"  {', '.join(paths)}: answers other than 200: {failures}")
        return summary(timings, failures)

    def reads(self, rpc, warm_rounds, cold_rounds):
        """p50/p95/p99 (ms) of each report read, cold and warm, and of the baselines."""
        now = utcnow()
        reads = {
            "health_cold": self.latencies(["/health"], cold_rounds, 1),
            "health_warm": self.latencies(["/health"], warm_rounds, CONCURRENCY),
        }
        for report, paths in read_paths(now).items():
            for path in paths:
                cold = self.latencies([path], cold_rounds, 1, cold=True)
                # One read fills the cache, alone: a slow one run beside others would
                # hold them past the cache's Redis timeout and turn the cache off.
                size = len(self.http.get(self.base_url + path, timeout=60).content)
                settle(rpc)
                warm = self.latencies([path], warm_rounds, CONCURRENCY)
                reads[path] = {"report": report, "bytes": size, "cold": cold, "warm": warm}
                say(f"  {path}: cold p95 {cold['p95']:.0f} ms, warm p95 {warm['p95']:.0f} ms")
        for path in time_travel_paths(now):
            cold = self.latencies([path], max(3, cold_rounds // 10), 1, cold=True)
            reads[path] = {"report": "as_of", "cold": cold}
            say(f"  {path}: p95 {cold['p95']:.0f} ms")
            settle(rpc)
        plain = [
            value
            for key, value in reads.items()
            if not key.startswith("health") and value["report"] != "as_of"
        ]
        return {
            "reports_reads": reads,
            "reports_read_cold_p95_ms": max(value["cold"]["p95"] for value in plain),
            "reports_read_warm_p95_ms": max(value["warm"]["p95"] for value in plain),
            "reports_health_cold_p95_ms": reads["health_cold"]["p95"],
            "reports_health_warm_p95_ms": reads["health_warm"]["p95"],
        }

    def cache_rests(self):
        """How often reports gave up on Redis for a while (its reads then are all cold)."""
        log = LOGS / "reports.log"
        return log.read_text().count("report cache unavailable") if log.exists() else 0

    def funnel_snapshots(self):
        with self.engine.connect() as connection:
            return connection.execute(text("SELECT count(*) FROM funnel_snapshots")).scalar()

    def segment_runs(self):
        """How many times segments were recomputed (each run touches their view)."""
        return self.view_counts(["segments"])

    def view_counts(self, names):
        """Events applied to the views `names`, together."""
        with self.engine.connect() as connection:
            return connection.execute(
                text(
                    "SELECT coalesce(sum(events_applied), 0) FROM view_state "
                    "WHERE view = ANY(:names)"
                ),
                {"names": names},
            ).scalar()

    # --- the backlog -------------------------------------------------------------------

    def applied(self):
        """Events applied so far: deal events move the funnel, interactions their own view."""
        return self.view_counts(["funnel", "interactions"])

    def backlog(self, count):
        """About `count` events, half deal events (each deal's history in order), half
        interactions, interleaved, all of customers in the data set."""
        with self.engine.connect() as connection:
            customers = connection.execute(
                text("SELECT customer_id, created_at FROM customer_facts")
            ).all()
        history = History(utcnow(), seed=29, customers=customers)
        units, deal_events, interactions = [], 0, 0
        while deal_events + interactions < count:
            if deal_events <= interactions:
                units.append(history.one_deal())
                deal_events += len(units[-1])
            else:
                units.append(list(history.interaction_events(1)))
                interactions += 1
        random.Random(3).shuffle(units)
        return [event for unit in units for event in unit]

    def drain(self, rpc, vhost, count):
        """Deal and interaction events piled up while reports was down, applied after it
        starts, for DRAIN_SECONDS at most; the funnel is read meanwhile, as a dashboard would."""
        figures = {
            "reports_raw_publish_per_s": raw_publish(vhost.amqp_uri, count),
            "reports_raw_consume_ack_per_s": raw_consume(vhost.amqp_uri, count),
            # What Nameko's own delivery of one message to one worker allows.
            "reports_bare_handler_per_s": bare_events.drain_rate(
                self.services, vhost.amqp_uri, count
            ),
        }
        events = self.backlog(count)
        self.services.stop("reports")
        before = self.applied()
        publish_events(vhost.amqp_uri, events)
        self.services.start("reports")
        # Timed from the first event applied, so the process's start-up is not counted.
        wait_for(lambda: self.applied() > before, timeout=120, interval=0.01)
        first, started = self.applied(), time.perf_counter()
        probe = Probe(self.http, self.base_url + read_paths(utcnow())["funnel"][0])
        deadline = started + DRAIN_SECONDS
        while self.applied() < before + len(events) and time.perf_counter() < deadline:
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        done = self.applied() - before
        timings, failures = probe.stop()
        figures.update(
            reports_backlog_events=len(events),
            reports_backlog_applied=done,
            reports_backlog_per_s=(before + done - first) / elapsed,
            reports_read_while_draining=summary(timings, failures),
            reports_read_while_draining_p95_ms=percentile(timings, 95),
            reports_read_while_draining_max_ms=max(timings),
        )
        say(
            f"backlog: {done:,} of {len(events):,} events applied in {elapsed:.0f} s, "
            f"{figures['reports_backlog_per_s']:.0f}/s; the funnel read meanwhile: "
            f"p95 {percentile(timings, 95):.0f} ms, slowest {max(timings):.0f} ms"
            + (f", answers other than 200: {failures}" if failures else "")
        )
        return figures


class Probe:
    """Reads one URL every PROBE_SECONDS in the background until stopped."""

    def __init__(self, http, url):
        self.http, self.url = http, url
        self.timings, self.failures = [], {}
        self.running = True
        self.thread = eventlet.spawn(self.run)

    def run(self):
        while self.running:
            started = time.perf_counter()
            status = self.http.get(self.url, timeout=60).status_code
            self.timings.append((time.perf_counter() - started) * 1000)
            if status != 200:
                self.failures[status] = self.failures.get(status, 0) + 1
            eventlet.sleep(PROBE_SECONDS)

    def stop(self):
        self.running = False
        self.thread.wait()
        return self.timings, self.failures


def summary(timings, failures):
    found = spread(timings)
    return {"reads": found.pop("count"), **found, "failures": failures}


def settle(rpc, prompt_ms=50, times=3):
    """Seconds until reports answers promptly again (`times` in a row): a segment
    recompute holds its process, even for a while after it returned."""
    started = since = time.perf_counter()
    streak = 0

    def prompt():
        nonlocal streak, since
        asked = time.perf_counter()
        rpc.reports.health()
        if (time.perf_counter() - asked) * 1000 < prompt_ms:
            streak, since = streak + 1, since if streak else asked
        else:
            streak = 0
        return streak >= times

    wait_for(prompt, timeout=300, interval=0.1, message="reports to answer promptly")
    return since - started


# The reports compared after a rebuild with their answers before it.
REBUILT_REPORTS = (
    "funnel_report",
    "sales_report",
    "service_report",
    "satisfaction_report",
    "customers_by_status_owner",
    "segments_report",
)
FRESHNESS = ("as_of", "lag_seconds", "rebuilding", "time_travel")
REBUILD_TIMEOUT_S = 1800


def numbers(rpc):
    """Each rebuilt report's answer without its freshness."""
    answers = {}
    for report in REBUILT_REPORTS:
        answer = getattr(rpc.reports, report)()
        answers[report] = {key: value for key, value in answer.items() if key not in FRESHNESS}
    return answers


def rebuild_seconds(rpc, bench):
    """REBUILD: seconds for the reports service to rebuild every view (target: under 2 min).

    The producers run on their copies of the data set's event logs; `request_rebuild`,
    then `rebuild_status` until done. The reports must answer the same numbers after
    it as before (segments too, recomputed from the rebuilt facts).
    """
    for producer in PRODUCERS:
        bench.services.start(producer)
    try:
        for producer in PRODUCERS:
            wait_for(
                lambda producer=producer: answers(rpc, producer), timeout=120, message=producer
            )
        before = numbers(rpc)
        started = time.perf_counter()
        rebuild_id = rpc.reports.request_rebuild("bench")["rebuild"]["rebuild_id"]
        status = None

        def done():
            nonlocal status
            status = rpc.reports.rebuild_status()
            return status["rebuild_id"] == rebuild_id and status["status"] == "done"

        wait_for(done, timeout=REBUILD_TIMEOUT_S, interval=0.5, message="the rebuild")
        elapsed = time.perf_counter() - started
        settle(rpc)
        after = numbers(rpc)
    finally:
        for producer in PRODUCERS:
            bench.services.stop(producer)
    differing = sorted(report for report in REBUILT_REPORTS if before[report] != after[report])
    say(
        f"rebuild: {status['events_read']:,} events read, {status['events_applied']:,} applied "
        f"in {elapsed:.0f} s ({status['events_read'] / elapsed:,.0f}/s); "
        + (f"reports that differ after it: {', '.join(differing)}" if differing else "same numbers")
    )
    return {
        "reports_rebuild_s": elapsed,
        "reports_rebuild_events": status["events_read"],
        "reports_rebuild_events_per_s": status["events_read"] / elapsed,
        "reports_rebuild_differing": differing,
    }


def say(line):
    print(line, file=sys.stderr, flush=True)
