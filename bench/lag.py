"""Gateway write to report view: how long after a client's 2xx its write shows in a view.

The whole system runs on PostgreSQL (bench/system.py). Writes go through the gateway
on an open-loop schedule (bench/traffic.py) at --lag-rate per second for
--lag-seconds, in turn: a customer created, a deal created, a deal created earlier in
the run moved to another stage. Each write's event is found in the reports database's
`applied_events` (aggregate id and event type; each deal is moved once), and its lag is
the `applied_at` recorded there (the clock of the same machine, taken inside the
transaction that applies it) minus the moment the client had the gateway's 2xx. An
event applied before the 2xx reached the client counts as no lag.

The baseline is the broker alone: messages published at the same rate, persistent and
confirmed as events are, from publish to a consumer's callback on the same broker.
"""

import sys
from collections import deque

from sqlalchemy import select

from bench.summary import Row, ratio_at_least
from bench.support import BENCH_TOKEN, raw_latencies_ms, spread
from bench.system import running_system
from bench.traffic import Client, achieved_rate, run_open_loop, schedule, statuses
from crm_common.db import make_engine
from services.reports.models import AppliedEvent
from tests.support.waiting import wait_for

CONNECTIONS = 50
# Customers the run's deals belong to, made before the clock starts (they warm up the
# gateway's connections too).
SETUP_CUSTOMERS = 20
APPLY_TIMEOUT_SECONDS = 180
EVENT_TYPES = ("customer_created", "deal_created", "deal_stage_changed")

ROWS = [
    Row(
        f"write to report view lag, p{share} (ms), open loop",
        f"lag_p{share}_ms",
        f"lag_raw_p{share}_ms",
        f"raw AMQP publish to consume at the same rate, p{share}",
    )
    for share in (50, 95, 99)
] + [
    Row(
        "writes answered per s through the gateway (open loop)",
        "lag_writes_per_s",
        "lag_offered_per_s",
        "writes offered per s",
        target=ratio_at_least(0.95),
    ),
    Row("... their gateway latency from the planned moment, p99 (ms)", "lag_write_p99_ms"),
]


def run(rate, seconds):
    with running_system("lag") as system:
        return LagBench(system).measure(rate, seconds)


class LagBench:
    def __init__(self, system):
        self.system = system
        self.client = Client(system.base_url, BENCH_TOKEN, CONNECTIONS)
        self.customers = []
        self.deals = deque()
        self.created = 0

    def measure(self, rate, seconds):
        http = self.system.http()
        for number in range(SETUP_CUSTOMERS):
            answer = http.post(
                f"{self.system.base_url}/api/v1/customers",
                json={"name": f"Lag setup {number}", "owner": "bench"},
                timeout=30,
            )
            answer.raise_for_status()
            self.customers.append(answer.json()["id"])
        raw = spread(raw_latencies_ms(self.system.vhost.amqp_uri, rate, seconds))
        say(f"lag: raw AMQP publish to consume at {rate}/s: p50 {raw['p50']:.1f} ms")

        outcomes = run_open_loop(schedule(rate, seconds), self.fire)
        failed = statuses(outcomes)
        done = [outcome for outcome in outcomes if outcome.ok]
        applied = self.applied_at({outcome.tag for outcome in done})
        lags = [
            max(0.0, (applied[outcome.tag].timestamp() - outcome.answered_wall) * 1000)
            for outcome in done
            if outcome.tag in applied
        ]
        if not lags:
            raise SystemExit(f"bench: no write reached the views (answers: {failed})")
        found, writes = spread(lags), spread([outcome.latency_ms for outcome in outcomes])
        figures = {
            "lag_offered_per_s": float(rate),
            "lag_writes_per_s": achieved_rate(outcomes),
            "lag_writes": len(outcomes),
            "lag_failed_writes": failed,
            "lag_not_applied": len(done) - len(lags),
            "lag_write_p99_ms": writes["p99"],
            "lag_writes_ms": writes,
            "lag_ms": found,
            "lag_raw_ms": raw,
        }
        for share in (50, 95, 99):
            figures[f"lag_p{share}_ms"] = found[f"p{share}"]
            figures[f"lag_raw_p{share}_ms"] = raw[f"p{share}"]
        say(
            f"lag: {len(outcomes)} writes at {rate}/s, {figures['lag_writes_per_s']:.0f}/s "
            f"answered, not 2xx: {failed or 'none'}; lag p50 {found['p50']:.0f} ms, "
            f"p95 {found['p95']:.0f} ms, p99 {found['p99']:.0f} ms"
            + (f"; {missing} never applied" if (missing := figures["lag_not_applied"]) else "")
        )
        return figures

    def fire(self, outcome):
        """The next write in turn: a customer, a deal, a move of a deal made earlier."""
        kind = outcome.number % 3
        if kind == 2 and self.deals:
            deal = self.deals.popleft()
            self.client.send(outcome, "POST", f"/api/v1/deals/{deal}/stage", {"stage": "qualified"})
            outcome.tag = (deal, "deal_stage_changed")
        elif kind == 0:
            self.client.send(
                outcome,
                "POST",
                "/api/v1/customers",
                {"name": f"Lag customer {outcome.number}", "owner": "bench"},
            )
            outcome.tag = (outcome.body.get("id"), "customer_created")
        else:
            customer = self.customers[outcome.number % len(self.customers)]
            body = {
                "customer_id": customer,
                "title": f"Lag deal {outcome.number}",
                "amount": "1000.00",
                "currency": "EUR",
            }
            self.client.send(outcome, "POST", "/api/v1/deals", body)
            outcome.tag = (outcome.body.get("id"), "deal_created")
            if outcome.ok:
                self.deals.append(outcome.body["id"])

    def applied_at(self, wanted):
        """{(aggregate id, event type): applied_at} of the `wanted` events, once all are
        applied (or APPLY_TIMEOUT_SECONDS passed)."""
        engine = make_engine(self.system.db_urls["reports"])
        found = {}

        def everything():
            with engine.connect() as connection:
                rows = connection.execute(
                    select(
                        AppliedEvent.aggregate_id, AppliedEvent.event_type, AppliedEvent.applied_at
                    ).where(AppliedEvent.event_type.in_(EVENT_TYPES))
                ).all()
            found.update({(aggregate, kind): moment for aggregate, kind, moment in rows})
            return wanted <= found.keys()

        try:
            wait_for(everything, timeout=APPLY_TIMEOUT_SECONDS, interval=1, message="events")
        except Exception as exc:  # noqa: BLE001  a figure with what arrived beats none
            say(f"lag: {len(wanted - found.keys())} writes not in the views: {exc}")
        engine.dispose()
        return found


def say(line):
    print(line, file=sys.stderr, flush=True)
