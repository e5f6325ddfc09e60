"""`crm demo` against the system as `make run` starts it: the reports show what it loaded."""

import os
import subprocess
import sys

import requests

from crm_common import demo_data
from crm_common.demo import load
from tests.e2e.conftest import ROOT
from tests.support.waiting import wait_for

CUSTOMERS = 12
SEED = 3


def expected(customers, seed):
    """What the stories of the data set hold, counted from the generator alone."""
    today = demo_data.today_utc()
    stories = [demo_data.story(seed, index, today) for index in range(customers)]
    deals = [deal for told in stories for deal in told.deals]
    tickets = [ticket for told in stories for ticket in told.tickets]
    return {
        "customers": customers,
        "deals": len(deals),
        "won": sum(deal.outcome == "won" for deal in deals),
        "lost": sum(deal.outcome == "lost" for deal in deals),
        "interactions": sum(len(told.interactions) for told in stories),
        "tickets": len(tickets),
        "resolved": sum("resolve" in ticket.steps for ticket in tickets),
        "satisfaction": sum(ticket.score is not None for ticket in tickets),
        "scores": sorted(ticket.score for ticket in tickets if ticket.score is not None),
    }


def test_the_demo_fills_every_report_and_a_second_run_adds_nothing(system):
    base_url, data_dir, _, _ = system
    want = expected(CUSTOMERS, SEED)
    # The sample must exercise every report, or the checks below prove little.
    assert want["won"] and want["lost"] and want["satisfaction"] and want["tickets"], want
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {(data_dir / 'admin-token').read_text().strip()}"
    lines = []

    counts = load(base_url, (data_dir / "admin-token").read_text().strip(), CUSTOMERS, SEED,
                  workers=3, echo=lines.append)  # fmt: skip

    for name in ("customers", "deals", "won", "lost", "interactions", "tickets", "resolved"):
        assert counts.get(name, 0) == want[name], (name, counts, want)
    assert lines[-1].startswith("demo: done.") and f"{CUSTOMERS}/{CUSTOMERS}" in lines[-2]

    def report(name, **params):
        answer = http.get(f"{base_url}/api/v1/reports/{name}", params=params, timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def caught_up():
        funnel = report("funnel")
        satisfaction = report("satisfaction")
        service = report("service")
        segments = report("segments")
        stages = {stage["stage"]: stage for stage in funnel["stages"]}
        done = (
            stages["lead"]["entered"] == want["deals"]
            and stages["won"]["entered"] == want["won"]
            and satisfaction["responses"] == want["satisfaction"]
            and service["opened"] == want["tickets"]
            and service["resolved"] == want["resolved"]
            and sum(item["customers"] for item in segments["items"]) == CUSTOMERS
        )
        return done and (funnel, satisfaction, service, segments)

    funnel, satisfaction, service, segments = wait_for(
        caught_up, timeout=90, interval=1, message="the reports to show the demo data"
    )
    assert funnel["win_rate"] == want["won"] / (want["won"] + want["lost"])
    assert funnel["bottleneck"] in demo_data.OPEN_STAGES
    assert satisfaction["csat_avg"] == round(sum(want["scores"]) / len(want["scores"]), 4)
    assert {row["agent"] for row in service["by_agent"]} - {None} <= set(demo_data.AGENTS)
    # Winners are high_value or regular, the rest are new and so potential.
    filled = {item["segment"] for item in segments["items"] if item["customers"]}
    assert "potential" in filled and filled & {"high_value", "regular"}
    sales = report("sales")
    assert {row["owner"] for row in sales["performance"]} <= set(demo_data.REPS)
    assert sales["forecast"]

    # Again, as `make demo` runs it: the admin token from the data directory, nothing new.
    env = {key: value for key, value in os.environ.items() if not key.startswith("CRM_")}
    env.update(CRM_DATA_DIR=str(data_dir), CRM_GATEWAY_ADDRESS=base_url.removeprefix("http://"))
    again = subprocess.run(
        [sys.executable, "-m", "crm_common.cli", "demo", "--customers", str(CUSTOMERS),
         "--seed", str(SEED)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert f"0 customers, {CUSTOMERS} skipped, 0 deals" in again.stdout, again.stdout
    listed = http.get(f"{base_url}/api/v1/customers", params={"limit": 500}, timeout=30).json()
    assert len(listed["items"]) == CUSTOMERS
    assert all(item["attributes"]["demo"] == "loaded" for item in listed["items"])
    tokens = http.get(f"{base_url}/api/v1/auth/tokens", timeout=30).json()
    assert not [token for token in tokens["items"] if token["role"] in ("sales", "service")]

    # A token it cannot use: said plainly, nothing loaded.
    refused = subprocess.run(
        [sys.executable, "-m", "crm_common.cli", "demo", "--url", base_url, "--token",
         "not-a-token-at-all", "--customers", "1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "token is refused" in refused.stderr and "401" in refused.stderr, refused.stderr
