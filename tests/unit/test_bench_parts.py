"""The bench's pure parts: percentiles, the summary table, the open-loop schedule, memory
growth, the soak's traffic and the command line. (The benchmarks themselves live in
bench/, not here.)"""

import json
import random

import pytest

from bench import run, summary, traffic
from bench.memory import growth
from bench.soak import differences
from bench.soak_traffic import STAGES, TICKET_STEPS, Workload
from bench.summary import Row, at_least, ratio_at_least, under
from bench.support import bench_env, percentile, spread
from bench.traffic import Outcome, achieved_rate, schedule, statuses


def test_percentiles_interpolate_and_never_pass_the_slowest():
    values = list(range(1, 101))  # 1..100
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile([7.0], 95) == 7.0
    assert percentile([1.0, 1000.0], 99) <= 1000.0
    found = spread([5.0, 1.0, 3.0, 2.0, 4.0])
    assert found["count"] == 5 and found["max"] == 5.0 and found["p50"] == 3.0


def test_the_open_loop_schedule_is_evenly_spaced_at_the_rate():
    plan = schedule(200, 2)
    assert len(plan) == 400
    assert plan[0] == 0.0 and plan[1] == pytest.approx(0.005) and plan[-1] == pytest.approx(1.995)
    assert schedule(3, 1, start=10.0) == pytest.approx([10.0, 10 + 1 / 3, 10 + 2 / 3])
    for rate, seconds in ((0, 1), (10, 0), (-1, 5)):
        with pytest.raises(ValueError):
            schedule(rate, seconds)


def test_latency_counts_from_the_planned_moment_and_the_rate_from_the_first_plan():
    late = Outcome(number=0, planned=100.0, sent=100.5, answered=100.6, status=201)
    failed = Outcome(number=1, planned=100.5, sent=100.5, answered=102.0, status=503)
    assert late.latency_ms == pytest.approx(600)
    assert late.ok and not failed.ok
    assert statuses([late, failed, Outcome(number=2, planned=101.0, answered=101.0)]) == {
        503: 1,
        0: 1,
    }
    assert achieved_rate([late, failed]) == pytest.approx(1.0)


ROWS = [
    Row("reads per s", "reads", "bare", "bare endpoint", target=ratio_at_least(0.4)),
    Row("import rows per s", "rows", target=at_least(5000)),
    Row("search p95 ms", "search", "health", "GET /health", target=under(50)),
    Row("rebuild s", "rebuild", target=under(120)),
    Row("not run", "absent", target=under(1)),
    Row("memory MiB", "memory", "bare_memory", "bare service"),
]


def test_the_summary_puts_each_figure_beside_its_baseline_ratio_and_verdict():
    figures = {
        "reads": 1500.0,
        "bare": 5000.0,
        "rows": 6000.0,
        "search": 55.0,
        "health": 1.1,
        "rebuild": None,
        "memory": 120.0,
        "bare_memory": 60.0,
    }
    entries = summary.build(ROWS, figures)
    by_key = {entry["key"]: entry for entry in entries}
    assert list(by_key) == ["reads", "rows", "search", "rebuild", "memory"]
    assert by_key["reads"]["ratio"] == pytest.approx(0.3)
    assert by_key["reads"]["result"] == "FAIL"  # 30% of the bare endpoint, 40% wanted
    assert by_key["reads"]["target"] == "at least 40% of the baseline"
    assert by_key["rows"]["result"] == "pass" and by_key["rows"]["ratio"] is None
    assert by_key["search"]["result"] == "FAIL" and by_key["search"]["target"] == "under 50"
    assert by_key["rebuild"]["result"] == "not measured"
    assert by_key["memory"]["ratio"] == pytest.approx(2.0) and by_key["memory"]["result"] == ""
    json.dumps(entries)  # goes into latest.json as it is

    text = summary.lines(entries)
    assert text[0].split()[:3] == ["figure", "value", "baseline"]
    assert "skipped" in text[4] and "not measured" in text[4]
    assert "0.30" in text[1] and "FAIL" in text[1] and "bare endpoint" in text[1]
    table = summary.markdown(entries)
    assert table[2] == (
        "| reads per s | 1,500 | 5,000 | 0.30 | at least 40% of the baseline | FAIL "
        "| bare endpoint |"
    )


def test_memory_growth_compares_the_last_quarter_with_the_first():
    flat = [(second * 5.0, 100 * 1024) for second in range(20)]
    assert growth(flat)["growth"] == 0 and growth(flat)["slope_mib_per_min"] == 0
    rising = [(second * 60.0, (100 + second) * 1024) for second in range(8)]
    found = growth(rising)
    assert found["first_quarter_mib"] == pytest.approx(100.5)
    assert found["last_quarter_mib"] == pytest.approx(106.5)
    assert found["growth"] == pytest.approx(0.0597, abs=1e-3)
    assert found["slope_mib_per_min"] == pytest.approx(1.0)
    assert found["peak_mib"] == 107
    with pytest.raises(ValueError):
        growth(rising[:3])


def answer(workload, request, number):
    """What the gateway would answer to `request`: 201 with a new id, or 200."""
    workload.answered(
        request,
        201 if request.action in ("customer", "deal", "ticket") else 200,
        {"id": f"id-{number}"},
    )


def test_the_soak_traffic_takes_records_through_their_whole_life():
    workload = Workload(random.Random(1))
    paths = []
    for number in range(3000):
        request = workload.next()
        paths.append(request.path)
        answer(workload, request, number)
    assert paths[0] == "/api/v1/customers"  # nothing else can be made first
    for end in (
        "/won",
        "/lost",
        "/stage",
        "/assign",
        "/respond",
        "/resolve",
        "/satisfaction",
        "/close",
        "/api/v1/interactions",
        "/api/v1/feedback",
        "/api/v1/tickets",
    ):
        assert any(path.endswith(end) for path in paths), end
    assert all(0 <= stage < len(STAGES) for stage in workload.deals.values())
    assert all(0 <= step < len(TICKET_STEPS) for step in workload.tickets.values())


def test_the_soak_traffic_never_sends_two_requests_about_one_record_at_once():
    workload = Workload(random.Random(2))
    in_flight = []
    for number in range(2000):
        request = workload.next()
        if request.record:
            assert request.record not in {sent.record for sent in in_flight}
        in_flight.append(request)
        if len(in_flight) > 10:  # answers come back late, in another order
            answer(workload, in_flight.pop(random.Random(number).randrange(10)), number)
    # A failed step (it may have been done all the same) retires its record.
    request = next(r for r in iter(workload.next, None) if r.action == "ticket_step")
    workload.answered(request, 503, {})
    assert request.record not in workload.tickets and request.record not in workload.busy


def test_drift_names_each_report_that_differs_after_the_rebuild():
    live = {"funnel": {"win_rate": 0.5}, "sales": {"won": 3}}
    assert differences(live, dict(live)) == {}
    assert differences(live, {"funnel": {"win_rate": 0.4}, "sales": {"won": 3}}) == {
        "funnel": [{"win_rate": 0.5}, {"win_rate": 0.4}]
    }


def test_a_request_that_finds_no_free_connection_in_time_is_not_sent(monkeypatch):
    monkeypatch.setattr(traffic, "QUEUE_SECONDS", 0.01)
    client = traffic.Client("http://127.0.0.1:9", "token", connections=0)
    outcome = client.send(Outcome(number=0, planned=0.0), "POST", "/api/v1/customers", {})
    assert outcome.status == 0 and not outcome.ok and outcome.answered >= outcome.sent > 0


def test_quick_takes_small_sizes_but_a_size_given_wins_even_the_full_one():
    assert run.arguments([]).load_seconds == 15
    assert run.arguments(["--quick"]).load_seconds == run.QUICK["load_seconds"]
    quick_but = run.arguments(["--quick", "--load-seconds", "15", "--deals", "7"])
    assert (quick_but.load_seconds, quick_but.deals) == (15, 7)
    assert quick_but.customers == run.QUICK["customers"]


def test_a_part_may_set_what_the_bench_environment_sets_by_default(tmp_path):
    vhost = type("Vhost", (), {"amqp_uri": "amqp://guest:guest@127.0.0.1:5672/bench"})()
    assert bench_env(vhost, tmp_path)["CRM_RATE_LIMIT_PER_MINUTE"] == "0"
    env = bench_env(vhost, tmp_path, CRM_RATE_LIMIT_PER_MINUTE="1000")
    assert (env["CRM_RATE_LIMIT_PER_MINUTE"], env["CRM_DATA_DIR"]) == ("1000", str(tmp_path))
