// One card per report: its figures, its chart (Chart.js) and the same numbers
// in a table. Every text that came from the data is set as text, never as HTML.

import * as fmt from "./format.js";
import { currencies, forecastByMonth, salesByOwner } from "./shapes.js";

const PALETTE = ["#2563eb", "#16a34a", "#f59e0b", "#7c3aed", "#0891b2", "#db2777", "#65a30d"];
const BOTTLENECK_COLOR = "#dc2626";
const MUTED = "#94a3b8";

// The charts drawn so far, by canvas id: each poll updates them in place.
const charts = new Map();

// Writes each bar's or point's number beside it, so a chart can be read without hovering.
// A dataset may say how with `formatLabel(value, index)`, or opt out with `valueLabels: false`.
const valueLabels = {
  id: "valueLabels",
  afterDatasetsDraw(chart) {
    const { ctx } = chart;
    const horizontal = chart.options.indexAxis === "y";
    ctx.save();
    ctx.font = "12px system-ui, sans-serif";
    chart.data.datasets.forEach((dataset, datasetIndex) => {
      const meta = chart.getDatasetMeta(datasetIndex);
      if (meta.hidden || dataset.valueLabels === false) return;
      meta.data.forEach((element, index) => {
        const value = dataset.data[index];
        if (value === null || value === undefined || (meta.type === "doughnut" && !value)) return;
        const text = dataset.formatLabel ? dataset.formatLabel(value, index) : String(value);
        if (!text) return;
        const { x, y } = element.tooltipPosition();
        if (meta.type === "doughnut") {
          ctx.fillStyle = "#ffffff";
          ctx.textAlign = "center";
          ctx.textBaseline = "middle";
          ctx.fillText(text, x, y);
        } else if (horizontal) {
          ctx.fillStyle = "#111827";
          ctx.textAlign = "left";
          ctx.textBaseline = "middle";
          ctx.fillText(text, x + 4, y);
        } else {
          ctx.fillStyle = "#111827";
          ctx.textAlign = "center";
          ctx.textBaseline = "bottom";
          ctx.fillText(text, x, y - 3);
        }
      });
    });
    ctx.restore();
  },
};

function draw(canvasId, config) {
  const canvas = document.getElementById(canvasId);
  if (!window.Chart) {
    canvas.parentElement.hidden = true; // the library did not load: the tables tell the numbers
    return;
  }
  const options = {
    animation: false,
    maintainAspectRatio: false,
    responsive: true,
    ...config.options,
  };
  const existing = charts.get(canvasId);
  if (existing && existing.config.type === config.type) {
    existing.data = config.data;
    existing.options = options;
    existing.update();
    return;
  }
  existing?.destroy();
  charts.set(canvasId, new window.Chart(canvas, { ...config, options, plugins: [valueLabels] }));
}

function color(index) {
  return PALETTE[index % PALETTE.length];
}

function percentAxis(position = "right") {
  return {
    position,
    min: 0,
    max: 100,
    grid: { drawOnChartArea: false },
    ticks: { callback: (value) => `${value}%` },
  };
}

function toPercent(fraction) {
  return fraction === null || fraction === undefined ? null : Math.round(fraction * 1000) / 10;
}

// A rate (fractions, drawn as percentages) over bars, on the right-hand "rate" axis.
function rateLine(label, fractions) {
  return {
    type: "line",
    label,
    data: fractions.map(toPercent),
    borderColor: BOTTLENECK_COLOR,
    backgroundColor: BOTTLENECK_COLOR,
    yAxisID: "rate",
    formatLabel: (value) => `${value}%`,
  };
}

// --- tables and figures ---------------------------------------------------------------------

// `rows`: {key, cells: [text...], className?}; the first column names the row.
function fillTable(table, headings, rows, empty = "Nothing in this period.") {
  table.replaceChildren();
  const head = table.createTHead().insertRow();
  for (const heading of headings) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = heading;
    head.append(th);
  }
  const body = table.createTBody();
  if (!rows.length) {
    const cell = body.insertRow().insertCell();
    cell.colSpan = headings.length;
    cell.className = "empty";
    cell.textContent = empty;
  }
  for (const row of rows) {
    const tr = body.insertRow();
    tr.dataset.key = row.key;
    if (row.className) tr.className = row.className;
    row.cells.forEach((text, index) => {
      const cell = index === 0 ? document.createElement("th") : document.createElement("td");
      if (index === 0) cell.scope = "row";
      cell.textContent = text;
      tr.append(cell);
    });
  }
}

function fillFigures(list, figures) {
  list.replaceChildren();
  for (const [term, value, className] of figures) {
    const wrapper = document.createElement("div");
    if (className) wrapper.className = className;
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = value;
    wrapper.append(dt, dd);
    list.append(wrapper);
  }
}

// --- the card frame -------------------------------------------------------------------------

export function show(cardId, report, render) {
  const card = document.getElementById(cardId);
  const freshness = card.querySelector(".freshness");
  freshness.textContent = fmt.freshness(report);
  freshness.dataset.asOf = report.as_of ?? "";
  freshness.dataset.lagSeconds = report.lag_seconds ?? "";
  card.querySelector(".problem").hidden = true;
  card.classList.remove("failed");
  render(card, report);
}

export function problem(cardId, message) {
  const card = document.getElementById(cardId);
  const element = card.querySelector(".problem");
  element.textContent = message;
  element.hidden = false;
  card.classList.add("failed");
}

export function forget() {
  for (const chart of charts.values()) chart.destroy();
  charts.clear();
}

// --- the reports ----------------------------------------------------------------------------

export function funnel(card, report) {
  const stages = report.stages || [];
  fillFigures(card.querySelector(".figures"), [
    ["Pipeline", report.pipeline ?? "–"],
    ["Won", fmt.count(report.won)],
    ["Lost", fmt.count(report.lost)],
    ["Win rate", fmt.percent(report.win_rate)],
    ["Bottleneck", report.bottleneck ?? "none", report.bottleneck ? "bottleneck" : ""],
  ]);
  const isBottleneck = (stage) => stage.stage === report.bottleneck;
  draw("funnel-chart", {
    type: "bar",
    data: {
      labels: stages.map((stage) => stage.stage),
      datasets: [
        {
          label: "Entered",
          data: stages.map((stage) => stage.entered),
          backgroundColor: stages.map((stage) => (isBottleneck(stage) ? BOTTLENECK_COLOR : color(0))),
        },
        { label: "Now in stage", data: stages.map((stage) => stage.current), backgroundColor: MUTED },
        {
          label: "Converted (conversion rate)",
          data: stages.map((stage) => stage.converted),
          backgroundColor: color(1),
          formatLabel: (value, index) => `${value} (${fmt.percent(stages[index].conversion_rate)})`,
        },
      ],
    },
    options: {
      indexAxis: "y",
      layout: { padding: { right: 70 } },
      scales: {
        x: { beginAtZero: true, ticks: { precision: 0 } },
        y: {
          ticks: {
            callback(value) {
              const name = this.getLabelForValue(value);
              return name === report.bottleneck ? `${name} ⚠ bottleneck` : name;
            },
          },
        },
      },
    },
  });
  fillTable(
    card.querySelector("table"),
    ["Stage", "Entered", "Now in stage", "Converted", "Conversion", "Drop-off", "Avg time in stage"],
    stages.map((stage) => ({
      key: stage.stage,
      className: isBottleneck(stage) ? "bottleneck" : "",
      cells: [
        isBottleneck(stage) ? `${stage.stage} ⚠ bottleneck` : stage.stage,
        fmt.count(stage.entered),
        fmt.count(stage.current),
        fmt.count(stage.converted),
        fmt.percent(stage.conversion_rate),
        fmt.percent(stage.drop_rate),
        fmt.hours(stage.avg_dwell_hours),
      ],
    })),
  );
}

export function sales(card, report) {
  const owners = salesByOwner(report.performance);
  const ownerName = (owner) => fmt.label(owner, "(no owner)");
  const wonCurrencies = currencies(owners, (row) => row.wonAmount);
  draw("sales-chart", {
    type: "bar",
    data: {
      labels: owners.map((row) => ownerName(row.owner)),
      datasets: [
        ...wonCurrencies.map((currency, index) => ({
          label: `Won (${currency})`,
          data: owners.map((row) => Number(row.wonAmount[currency] ?? 0)),
          backgroundColor: color(index),
          yAxisID: "y",
          formatLabel: (value) => (value ? fmt.money(value, currency) : ""),
        })),
        rateLine("Win rate", owners.map((row) => row.winRate)),
      ],
    },
    options: {
      layout: { padding: { top: 20 } },
      scales: { y: { beginAtZero: true, grace: "10%" }, rate: percentAxis() },
    },
  });
  fillTable(
    card.querySelector("#sales-table"),
    ["Rep", "Won amount", "Won", "Lost", "Win rate"],
    owners.map((row) => ({
      key: ownerName(row.owner),
      cells: [
        ownerName(row.owner),
        fmt.amounts(row.wonAmount),
        fmt.count(row.won),
        fmt.count(row.lost),
        fmt.percent(row.winRate),
      ],
    })),
    "No deal won or lost in this period.",
  );

  const forecast = forecastByMonth(report.forecast);
  const months = [...new Set(forecast.map((row) => row.month))];
  const forecastCurrencies = [...new Set(forecast.map((row) => row.currency))].sort();
  draw("forecast-chart", {
    type: "bar",
    data: {
      labels: months,
      datasets: forecastCurrencies.map((currency, index) => ({
        label: `Weighted (${currency})`,
        data: months.map((month) => {
          const row = forecast.find((item) => item.month === month && item.currency === currency);
          return row ? Number(row.weightedAmount) : null;
        }),
        backgroundColor: color(index + 2),
        formatLabel: (value) => fmt.money(value, currency),
      })),
    },
    options: {
      layout: { padding: { top: 20 } },
      scales: { y: { beginAtZero: true, grace: "10%" } },
    },
  });
  fillTable(
    card.querySelector("#forecast-table"),
    ["Month", "Open deals", "Amount", "Weighted"],
    forecast.map((row) => ({
      key: `${row.month} ${row.currency}`,
      cells: [
        row.month,
        fmt.count(row.deals),
        fmt.money(row.amount, row.currency),
        fmt.money(row.weightedAmount, row.currency),
      ],
    })),
    "No open deal expected to close in this period.",
  );
}

export function satisfaction(card, report) {
  const months = [...(report.groups || [])].sort((a, b) => a.month.localeCompare(b.month));
  fillFigures(card.querySelector(".figures"), [
    ["Answers", fmt.count(report.responses)],
    ["CSAT average (1–5)", fmt.score(report.csat_avg)],
    ["Satisfied (4–5)", fmt.percent(report.csat_pct)],
  ]);
  draw("satisfaction-chart", {
    type: "line",
    data: {
      labels: months.map((row) => row.month),
      datasets: [
        {
          label: "CSAT average",
          data: months.map((row) => row.csat_avg),
          borderColor: color(0),
          backgroundColor: color(0),
          yAxisID: "y",
          formatLabel: (value) => fmt.score(value),
        },
        {
          label: "Satisfied (4–5) %",
          data: months.map((row) => toPercent(row.csat_pct)),
          borderColor: color(1),
          backgroundColor: color(1),
          yAxisID: "pct",
          formatLabel: (value) => `${value}%`,
        },
      ],
    },
    options: {
      layout: { padding: { top: 20 } },
      scales: { y: { min: 1, max: 5, title: { display: true, text: "score" } }, pct: percentAxis() },
    },
  });
  fillTable(
    card.querySelector("table"),
    ["Month", "Answers", "CSAT average", "Satisfied (4–5)"],
    months.map((row) => ({
      key: row.month,
      cells: [row.month, fmt.count(row.responses), fmt.score(row.csat_avg), fmt.percent(row.csat_pct)],
    })),
    "No answer recorded in this period.",
  );
}

export function segments(card, report) {
  const items = report.items || [];
  draw("segments-chart", {
    type: "doughnut",
    data: {
      labels: items.map((row) => row.segment),
      datasets: [
        {
          label: "Customers",
          data: items.map((row) => row.customers),
          backgroundColor: items.map((_, index) => color(index)),
          formatLabel: (value, index) => fmt.percent(items[index].share),
        },
      ],
    },
    options: { plugins: { legend: { position: "right" } } },
  });
  fillTable(
    card.querySelector("table"),
    ["Segment", "Customers", "Share", "Avg monetary"],
    items.map((row) => ({
      key: row.segment,
      cells: [
        row.segment,
        fmt.count(row.customers),
        fmt.percent(row.share),
        row.avg_monetary === null ? "–" : Number(row.avg_monetary).toLocaleString(),
      ],
    })),
    "No customers yet.",
  );
}

export function service(card, report) {
  const agents = report.by_agent || [];
  const agentName = (agent) => fmt.label(agent, "(unassigned)");
  fillFigures(card.querySelector(".figures"), [
    ["Opened", fmt.count(report.opened)],
    ["Resolved", fmt.count(report.resolved)],
    ["Resolution rate", fmt.percent(report.resolution_rate)],
    ["Median first response", fmt.duration(report.median_first_response_seconds)],
    ["Median resolution", fmt.duration(report.median_resolution_seconds)],
    ["SLA breach rate", fmt.percent(report.sla_breach_rate), report.breached ? "breached" : ""],
  ]);
  draw("service-chart", {
    type: "bar",
    data: {
      labels: agents.map((row) => agentName(row.agent)),
      datasets: [
        { label: "Opened", data: agents.map((row) => row.opened), backgroundColor: color(0) },
        { label: "Resolved", data: agents.map((row) => row.resolved), backgroundColor: color(1) },
        rateLine("SLA breach rate", agents.map((row) => row.sla_breach_rate)),
      ],
    },
    options: {
      layout: { padding: { top: 20 } },
      scales: { y: { beginAtZero: true, grace: "10%", ticks: { precision: 0 } }, rate: percentAxis() },
    },
  });
  const row = (key, name, figures) => ({
    key,
    className: key === "all" ? "total" : "",
    cells: [
      name,
      fmt.count(figures.opened),
      fmt.count(figures.resolved),
      fmt.percent(figures.resolution_rate),
      fmt.duration(figures.median_first_response_seconds),
      fmt.duration(figures.median_resolution_seconds),
      fmt.percent(figures.sla_breach_rate),
    ],
  });
  fillTable(
    card.querySelector("table"),
    ["Agent", "Opened", "Resolved", "Resolution rate", "Median first response",
      "Median resolution", "SLA breach rate"],
    agents.length
      ? [...agents.map((figures) => row(agentName(figures.agent), agentName(figures.agent), figures)),
        row("all", "All agents", report)]
      : [],
    "No ticket opened in this period.",
  );
}
