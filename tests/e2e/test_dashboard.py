"""A manager opens /dashboard in a real browser: every chart draws the reports' real numbers,
filters change what is drawn, new data arrives without a reload, and a bad token is told so."""

import datetime
import time

import pytest

from tests.support.http import created
from tests.support.settings import ADMIN_TOKEN
from tests.support.tickets import handled_ticket
from tests.support.waiting import wait_for

WAIT_MS = 15_000
# The whole test, system start to last check, stays well inside a minute.
BUDGET_SECONDS = 60

CHART = """id => {
  const chart = Chart.getChart(id);
  if (!chart) return null;
  const { width, height } = chart.canvas;
  const pixels = chart.ctx.getImageData(0, 0, width, height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i]) painted += 1;
  return {
    type: chart.config.type,
    labels: chart.data.labels,
    datasets: chart.data.datasets.map(d => ({ label: d.label, data: d.data })),
    painted,
  };
}"""

TABLE = """selector => [...document.querySelectorAll(`${selector} tbody tr`)].map(
  row => [...row.cells].map(cell => cell.textContent))"""


def ok(response):
    assert response.status_code == 200, response.text
    return response.json()


def months_ahead(count):
    today = datetime.date.today().replace(day=15)
    return (today + datetime.timedelta(days=31 * count)).replace(day=15).isoformat()


def create_sales(client):
    """sam wins one deal and has one in proposal; kim loses one and has one in lead."""
    ada = created(client.post("/api/v1/customers", {"name": "Ada Lovelace", "owner": "sam"}))
    bob = created(client.post("/api/v1/customers", {"name": "Bob Noyce", "owner": "kim"}))

    def deal(customer, owner, amount, close):
        body = {
            "customer_id": customer["id"],
            "title": f"{owner} {amount}",
            "amount": amount,
            "currency": "GBP",
            "owner": owner,
            "expected_close_date": close,
        }
        return created(client.post("/api/v1/deals", body))["id"]

    won = deal(ada, "sam", "1000.00", months_ahead(1))
    ok(client.post(f"/api/v1/deals/{won}/stage", {"stage": "qualified"}))
    ok(client.post(f"/api/v1/deals/{won}/won", {}))
    moved = deal(ada, "sam", "2000.00", months_ahead(1))
    ok(client.post(f"/api/v1/deals/{moved}/stage", {"stage": "proposal"}))
    lost = deal(bob, "kim", "500.00", months_ahead(2))
    ok(client.post(f"/api/v1/deals/{lost}/lost", {"reason": "Budget frozen"}))
    deal(bob, "kim", "4000.00", months_ahead(2))
    return ada, bob


def settled_reports(client, expect):
    """The five reports, once each shows what `expect` asks of it."""

    paths = {
        "funnel": "/api/v1/reports/funnel",
        "sales": "/api/v1/reports/sales",
        "satisfaction": "/api/v1/reports/satisfaction?group_by=month",
        "segments": "/api/v1/reports/segments",
        "service": "/api/v1/reports/service",
    }

    def read():
        answers = {name: client.get(path) for name, path in paths.items()}
        # The funnel answers 404 until reports have the default pipeline's event.
        if answers["funnel"].status_code == 404:
            return None
        reports = {name: ok(answer) for name, answer in answers.items()}
        return reports if all(check(reports[name]) for name, check in expect.items()) else None

    return wait_for(read, timeout=20, interval=0.3, message="the reports to show the data")


def chart(page, canvas_id):
    return page.evaluate(CHART, canvas_id)


def table(page, selector):
    return page.evaluate(TABLE, selector)


def wait_chart(page, canvas_id, predicate_js):
    """Until `predicate_js` (a JS expression over `c`, the chart) holds for the chart drawn."""
    page.wait_for_function(
        f"id => {{ const c = Chart.getChart(id); return !!c && ({predicate_js}); }}",
        arg=canvas_id,
        timeout=WAIT_MS,
    )


def percent(fraction):
    return None if fraction is None else round(fraction * 1000) / 10


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="en-US", timezone_id="UTC")
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.problems = []
    # Script errors and refused content (a Content-Security-Policy violation, say); the 401s
    # the test provokes on purpose are logged as failed loads and are left out.
    page.on(
        "console",
        lambda m: (
            m.type == "error"
            and not m.text.startswith("Failed to load resource")
            and page.problems.append(m.text)
        ),
    )
    page.on("pageerror", lambda error: page.problems.append(str(error)))
    yield page
    context.close()


def test_the_dashboard_draws_the_reports_and_follows_filters_and_new_data(client, page):
    started = time.monotonic()
    ada, bob = create_sales(client)
    handled_ticket(client, ada["id"], "ann", score=5)
    handled_ticket(client, ada["id"], "ann", score=4)
    handled_ticket(client, bob["id"], "bo", score=2)
    handled_ticket(client, bob["id"], "bo", resolve=False)
    reports = settled_reports(
        client,
        {
            "funnel": lambda r: (
                [s["entered"] for s in r["stages"]] == [4, 1, 1, 0, 1]
                and (r["won"], r["lost"]) == (1, 1)
            ),
            "sales": lambda r: (
                len(r["performance"]) == 2
                and sorted(row["weighted_amount"] for row in r["forecast"]) == ["1000.00", "400.00"]
            ),
            "satisfaction": lambda r: r["responses"] == 3,
            # ada has won a deal (regular); bob has not, and is new (potential).
            "segments": lambda r: (
                {row["segment"]: row["customers"] for row in r["items"]}
                == {"high_value": 0, "regular": 1, "potential": 1, "at_risk": 0, "inactive": 0}
            ),
            "service": lambda r: (
                [(a["agent"], a["opened"], a["resolved"]) for a in r["by_agent"]]
                == [("ann", 2, 2), ("bo", 2, 1)]
            ),
        },
    )

    # A wrong token is refused with a clear message, and the page asks again.
    page.goto(f"{client.base_url}/dashboard")
    assert page.is_visible("#sign-in") and not page.is_visible("#reports")
    page.fill("#token", "not-a-token")
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector("#auth-message:not([hidden])")
    assert "did not accept this token (401)" in page.inner_text("#auth-message")
    assert page.is_visible("#sign-in")

    page.fill("#token", ADMIN_TOKEN)
    page.click("#sign-in-form button[type=submit]")
    for card in ("funnel", "sales", "satisfaction", "segments", "service"):
        page.wait_for_selector(f"#{card} .freshness[data-as-of]:not([data-as-of=''])")
    assert page.evaluate("sessionStorage.getItem('crm.dashboard.token')") == ADMIN_TOKEN
    page.evaluate("window.notReloaded = true")

    # Funnel: per stage entered / now / converted, conversion rates, the bottleneck marked.
    funnel = reports["funnel"]
    stages = funnel["stages"]
    drawn = chart(page, "funnel-chart")
    assert drawn["painted"] > 0
    assert drawn["labels"] == [stage["stage"] for stage in stages]
    assert [d["data"] for d in drawn["datasets"]] == [
        [stage["entered"] for stage in stages],
        [stage["current"] for stage in stages],
        [stage["converted"] for stage in stages],
    ]
    assert funnel["bottleneck"] == "proposal"
    rows = {row[0]: row for row in table(page, "#funnel table")}
    assert rows["lead ⚠ bottleneck" if funnel["bottleneck"] == "lead" else "lead"][1:5] == [
        "4",
        "1",
        "2",
        "50.0%",
    ]
    assert "proposal ⚠ bottleneck" in rows
    assert page.get_attribute("#funnel tr.bottleneck", "data-key") == "proposal"
    assert "Win rate50.0%" in page.inner_text("#funnel .figures").replace("\n", "")

    # Segment shares.
    segments = reports["segments"]["items"]
    drawn = chart(page, "segments-chart")
    assert drawn["type"] == "doughnut" and drawn["painted"] > 0
    assert drawn["labels"] == [row["segment"] for row in segments]
    assert drawn["datasets"][0]["data"] == [row["customers"] for row in segments]
    shares = {row[0]: row[2] for row in table(page, "#segments table")}
    assert shares == {row["segment"]: f"{row['share'] * 100:.1f}%" for row in segments}

    # CSAT trend: average and share of 4-5 per month.
    months = reports["satisfaction"]["groups"]
    drawn = chart(page, "satisfaction-chart")
    assert drawn["painted"] > 0
    assert drawn["labels"] == [row["month"] for row in months]
    assert drawn["datasets"][0]["data"] == [row["csat_avg"] for row in months]
    assert drawn["datasets"][1]["data"] == [percent(row["csat_pct"]) for row in months]
    [this_month] = table(page, "#satisfaction table")
    assert this_month == [months[0]["month"], "3", "3.67", "66.7%"]

    # Sales by rep: won amount and win rate, and the won / lost counts in the table.
    drawn = chart(page, "sales-chart")
    assert drawn["painted"] > 0
    assert drawn["labels"] == ["kim", "sam"]
    assert drawn["datasets"] == [
        {"label": "Won (GBP)", "data": [0, 1000]},
        {"label": "Win rate", "data": [0, 100]},
    ]
    assert table(page, "#sales-table") == [
        ["kim", "–", "0", "1", "0.0%"],
        ["sam", "£1,000.00", "1", "0", "100.0%"],
    ]
    # The weighted forecast by expected close month: 2000 x 0.5 (proposal), 4000 x 0.1 (lead).
    forecast = reports["sales"]["forecast"]
    drawn = chart(page, "forecast-chart")
    assert drawn["labels"] == sorted({row["month"] for row in forecast})
    assert drawn["datasets"] == [{"label": "Weighted (GBP)", "data": [1000, 400]}]
    assert [row[3] for row in table(page, "#forecast-table")] == ["£1,000.00", "£400.00"]

    # Service levels per agent, and the totals.
    service = reports["service"]
    drawn = chart(page, "service-chart")
    assert drawn["labels"] == [row["agent"] for row in service["by_agent"]] == ["ann", "bo"]
    assert [d["data"] for d in drawn["datasets"]] == [
        [2, 2],
        [2, 1],
        [percent(row["sla_breach_rate"]) for row in service["by_agent"]],
    ]
    assert [row[:4] for row in table(page, "#service table")] == [
        ["ann", "2", "2", "100.0%"],
        ["bo", "2", "1", "50.0%"],
        ["All agents", "4", "3", "75.0%"],
    ]
    figures = page.inner_text("#service .figures").replace("\n", "")
    assert "Resolution rate75.0%" in figures and "SLA breach rate0.0%" in figures

    # Each card says how fresh it is.
    for card in ("funnel", "sales", "satisfaction", "segments", "service"):
        freshness = page.inner_text(f"#{card} .freshness")
        assert freshness.startswith("As of") and "lag" in freshness
        assert page.get_attribute(f"#{card} .freshness", "data-lag-seconds") != ""

    # An owner filter redraws the sales charts with that rep alone; an agent filter the service.
    page.fill("#filter-owner", "sam")
    page.press("#filter-owner", "Enter")
    wait_chart(page, "sales-chart", "c.data.labels.join() === 'sam'")
    wait_chart(page, "funnel-chart", "c.data.datasets[0].data[0] === 2")
    assert chart(page, "forecast-chart")["datasets"] == [
        {"label": "Weighted (GBP)", "data": [1000]}
    ]
    page.fill("#filter-agent", "bo")
    page.press("#filter-agent", "Enter")
    wait_chart(page, "service-chart", "c.data.labels.join() === 'bo'")
    assert table(page, "#satisfaction table")[0][1:3] == ["1", "2.00"]
    assert "owner=sam" in page.url and "agent=bo" in page.url
    # A period before anything happened leaves the funnel empty.
    page.fill("#filter-from", "2020-01-01")
    page.fill("#filter-to", "2020-01-31")
    page.press("#filter-owner", "Enter")
    wait_chart(page, "funnel-chart", "c.data.datasets[0].data.every(n => n === 0)")
    wait_chart(page, "sales-chart", "c.data.labels.length === 0")

    # Back to everything, refreshing every 5 s: a new ticket shows up without a reload.
    for field in ("#filter-owner", "#filter-agent", "#filter-from", "#filter-to"):
        page.fill(field, "")
    page.select_option("#filter-refresh", "5")
    wait_chart(page, "service-chart", "c.data.labels.join() === 'ann,bo'")
    handled_ticket(client, ada["id"], "cy", score=3)
    wait_chart(page, "service-chart", "c.data.labels.join() === 'ann,bo,cy'")
    assert page.evaluate("window.notReloaded") is True

    assert page.problems == []
    assert time.monotonic() - started < BUDGET_SECONDS


def test_a_token_the_gateway_revoked_sends_the_page_back_to_the_token_prompt(client, page):
    viewer = client.as_role("viewer", "val")
    # Filters come from the page's address too: a view can be bookmarked.
    page.goto(f"{client.base_url}/dashboard?agent=val&refresh=5")
    page.fill("#token", viewer.token)
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector("#service .freshness[data-as-of]")
    assert page.is_visible("#reports")
    assert page.input_value("#filter-agent") == "val"
    assert page.input_value("#filter-refresh") == "5"

    [record] = [r for r in ok(client.get("/api/v1/auth/tokens"))["items"] if r["role"] == "viewer"]
    assert client.request("DELETE", f"/api/v1/auth/tokens/{record['id']}").status_code == 204
    page.click("#filters button[type=submit]")
    page.wait_for_selector("#auth-message:not([hidden])")
    assert "401" in page.inner_text("#auth-message")
    assert not page.is_visible("#reports")
    assert page.evaluate("sessionStorage.getItem('crm.dashboard.token')") is None
