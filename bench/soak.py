"""Soak run: mixed traffic through the gateway at a steady rate for minutes, then the views
checked against a rebuild of them and each service's memory over the run.

    make soak            (or: python -m bench.soak [--minutes 5] [--rate 5])

Not part of the tests or of `make bench`: it takes minutes. The whole system runs on
PostgreSQL (bench/system.py). After --warmup seconds of traffic, each service's
resident size is sampled every --sample-seconds until the traffic stops; a service
whose mean over the last quarter of the samples is more than MAX_GROWTH above its
mean over the first quarter is growing. Then, once every event the producers logged
is applied and the views are still, every report is read, a rebuild is asked for
through the admin endpoint, and once it is done and the views are still again every
report is read again: any difference is drift. Results go to bench/results/soak.json.
"""

import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime  # noqa: E402

from nameko.events import EventHandler  # noqa: E402
from sqlalchemy import column, func, select, table  # noqa: E402

from bench import summary  # noqa: E402
from bench.memory import RssSampler, growth  # noqa: E402
from bench.run import RESULTS, machine, rounded  # noqa: E402
from bench.soak_traffic import Workload  # noqa: E402
from bench.summary import Row, ratio_at_least, under  # noqa: E402
from bench.support import BENCH_TOKEN, spread  # noqa: E402
from bench.system import SERVICES, running_system  # noqa: E402
from bench.traffic import Client, achieved_rate, run_open_loop, schedule, statuses  # noqa: E402
from crm_common.db import make_engine  # noqa: E402
from services.reports.service import ReportsService  # noqa: E402
from tests.support.report_snapshot import snapshot  # noqa: E402
from tests.support.waiting import wait_for  # noqa: E402

MAX_GROWTH = 0.10
CONNECTIONS = 20
# Longer than CRM_REPORTS_SEGMENT_SECONDS (5), so a segment recompute due has happened.
STILL_SECONDS = 8
CATCH_UP_TIMEOUT = 900
PRODUCERS = ("customers", "pipeline", "interactions")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5, help="traffic after the warm-up")
    parser.add_argument("--rate", type=float, default=5, help="requests per second")
    parser.add_argument("--warmup", type=float, default=60, help="seconds before sampling")
    parser.add_argument("--sample-seconds", type=float, default=5, help="between RSS samples")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    logging.getLogger("amqp").setLevel(logging.ERROR)
    with running_system("soak") as system:
        result = Soak(system, args).run()
    entries = summary.build(rows(result["figures"]), result["figures"])
    print("\n".join([*summary.lines(entries), *drift_lines(result["drift"])]))
    RESULTS.mkdir(parents=True, exist_ok=True)
    result.update(
        ran_at=datetime.now(UTC).isoformat(timespec="seconds"),
        machine=machine({}),
        arguments=vars(args),
        summary=entries,
    )
    (RESULTS / "soak.json").write_text(json.dumps(rounded(result), indent=2) + "\n")
    passed = all(entry["result"] != "FAIL" for entry in entries) and not result["drift"]
    return 0 if passed else 1


class Soak:
    def __init__(self, system, args):
        self.system = system
        self.args = args
        self.http = system.http()
        self.client = Client(system.base_url, BENCH_TOKEN, CONNECTIONS)
        self.workload = Workload(random.Random(args.seed))
        self.requests = {}

    def run(self):
        args = self.args
        say(f"soak: {args.warmup:.0f} s warm-up, then {args.minutes} min at {args.rate}/s")
        warmup = run_open_loop(schedule(args.rate, args.warmup), self.fire)
        sampler = RssSampler(self.system.services.pids(), interval=args.sample_seconds)
        outcomes = run_open_loop(schedule(args.rate, args.minutes * 60), self.fire)
        samples = sampler.stop()
        say(f"soak: traffic done, {achieved_rate(outcomes):.1f}/s; waiting for the views")
        applied = self.caught_up()
        live = self.still()
        rebuild = self.rebuild()
        rebuilt = self.still()
        everything = warmup + outcomes
        figures = {
            "soak_offered_per_s": args.rate,
            "soak_answered_per_s": achieved_rate(outcomes),
            "soak_requests": len(everything),
            "soak_not_2xx": sum(statuses(everything).values()),
            "soak_statuses": statuses(everything),
            "soak_latency_ms": spread([outcome.latency_ms for outcome in outcomes]),
            "soak_events_applied": applied,
            "soak_rebuild": rebuild,
            "soak_memory": {name: growth(found) for name, found in samples.items()},
        }
        figures["soak_p99_ms"] = figures["soak_latency_ms"]["p99"]
        for name, found in figures["soak_memory"].items():
            figures[f"soak_rss_growth_{name}"] = found["growth"]
            figures[f"soak_rss_slope_{name}"] = found["slope_mib_per_min"]
        return {"figures": figures, "drift": differences(live, rebuilt)}

    def fire(self, outcome):
        request = self.workload.next()
        self.client.send(outcome, request.method, request.path, request.body)
        outcome.tag = request.action
        self.workload.answered(request, outcome.status, outcome.body)

    def caught_up(self):
        """Every event the producers logged that reports take in is applied: answers how
        many."""
        engines = {name: make_engine(url) for name, url in self.system.db_urls.items()}
        wanted = reports_events()

        def count(name, table, condition=None):
            query = select(func.count()).select_from(table)
            if condition is not None:
                query = query.where(condition)
            with engines[name].connect() as connection:
                return connection.execute(query).scalar()

        def applied():
            outbox = table("outbox", column("producer"), column("event_type"))
            logged = sum(
                count(name, outbox, outbox.c.event_type.in_(wanted[name])) for name in PRODUCERS
            )
            done = count("reports", table("applied_events"))
            return done if done >= logged else None

        try:
            return wait_for(applied, timeout=CATCH_UP_TIMEOUT, interval=2, message="the events")
        finally:
            for engine in engines.values():
                engine.dispose()

    def still(self):
        """Every report's answer, once two reads STILL_SECONDS apart agree and no rebuild
        runs."""

        def settled():
            before = snapshot(self.get)
            time.sleep(STILL_SECONDS)
            after = snapshot(self.get)
            rebuilding = any(
                self.get(f"/api/v1/reports/{report}").json().get("rebuilding")
                for report in ("customers", "funnel")
            )
            if before is None or after is None or before[0] != after[0] or rebuilding:
                return None
            return after[0]

        return wait_for(settled, timeout=600, interval=1, message="the views to be still")

    def rebuild(self):
        started = time.perf_counter()
        answer = self.http.post(f"{self.system.base_url}/api/v1/admin/reports/rebuild", json={})
        if answer.status_code != 202:
            raise SystemExit(f"soak: the rebuild was refused: {answer.status_code} {answer.text}")

        def done():
            status = self.get("/api/v1/admin/reports/rebuild").json()
            return status if status["status"] == "done" else None

        status = wait_for(done, timeout=1800, interval=2, message="the rebuild")
        seconds = time.perf_counter() - started
        say(f"soak: rebuilt in {seconds:.0f} s, {status['events_applied']} events applied")
        return {"seconds": seconds, "events_read": status["events_read"]}

    def get(self, path):
        return self.http.get(self.system.base_url + path, timeout=60)


def reports_events():
    """{producer: [event types the reports service handles]}, from its entrypoints."""
    found = {}
    for method in vars(ReportsService).values():
        for entrypoint in getattr(method, "nameko_entrypoints", ()):
            if isinstance(entrypoint, EventHandler):
                found.setdefault(entrypoint.source_service, []).append(entrypoint.event_type)
    return found


def differences(live, rebuilt):
    """{report: (live answer, rebuilt answer)} of each report that differs."""
    return {
        report: [answer, rebuilt.get(report)]
        for report, answer in live.items()
        if rebuilt.get(report) != answer
    }


def rows(figures):
    found = [
        Row(
            "requests answered per s, mixed traffic (open loop)",
            "soak_answered_per_s",
            "soak_offered_per_s",
            "requests offered per s",
            target=ratio_at_least(0.95),
        ),
        Row("requests not answered 2xx", "soak_not_2xx", target=under(1)),
        Row("their latency from the planned moment, p99 (ms)", "soak_p99_ms"),
    ]
    for name in (*SERVICES, "gateway"):
        found.append(
            Row(
                f"resident memory of {name}, last quarter over first, growth",
                f"soak_rss_growth_{name}",
                target=under(MAX_GROWTH),
            )
        )
    return found


def drift_lines(drift):
    if not drift:
        return ["views after a rebuild: the same as before it (no drift)"]
    lines = ["views after a rebuild: DIFFERENT (drift) in " + ", ".join(drift)]
    for report, (live, rebuilt) in drift.items():
        lines += [
            f"  {report} live:    {json.dumps(live)[:500]}",
            f"  {report} rebuilt: {json.dumps(rebuilt)[:500]}",
        ]
    return lines


def say(line):
    print(line, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
