// The dashboard: asks for a token, reads the five reports with it, draws them,
// and reads them again every few seconds. Filters live in the page's address
// (so a view can be bookmarked); the token never does.

import * as cards from "./cards.js";
import { monthOf } from "./shapes.js";

const TOKEN_KEY = "crm.dashboard.token";
const REQUEST_TIMEOUT_MS = 10000;
const FILTERS = ["from", "to", "owner", "agent", "refresh"];

// Which filters each report takes, in the names its endpoint knows.
const REPORTS = [
  {
    card: "funnel",
    path: "funnel",
    query: (f) => ({ from: f.from, to: f.to, owner: f.owner }),
    render: cards.funnel,
  },
  {
    card: "sales",
    path: "sales",
    query: (f) => ({ from: monthOf(f.from), to: monthOf(f.to), owner: f.owner }),
    render: cards.sales,
  },
  {
    card: "satisfaction",
    path: "satisfaction",
    query: (f) => ({ group_by: "month", from: f.from, to: f.to, agent: f.agent }),
    render: cards.satisfaction,
  },
  { card: "segments", path: "segments", query: () => ({}), render: cards.segments },
  {
    card: "service",
    path: "service",
    query: (f) => ({ from: f.from, to: f.to, agent: f.agent }),
    render: cards.service,
  },
];

const state = { token: null, timer: null, generation: 0 };
const $ = (id) => document.getElementById(id);

class ReportError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// --- the token ------------------------------------------------------------------------------

function storedToken() {
  return sessionStorage.getItem(TOKEN_KEY) || localStorage.getItem(TOKEN_KEY);
}

function keepToken(token, remember) {
  sessionStorage.setItem(TOKEN_KEY, token);
  if (remember) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

function askForToken(message) {
  stopPolling();
  state.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  localStorage.removeItem(TOKEN_KEY);
  cards.forget();
  $("reports").hidden = true;
  $("filters").hidden = true;
  $("sign-out").hidden = true;
  $("sign-in").hidden = false;
  $("auth-message").textContent = message || "";
  $("auth-message").hidden = !message;
  setStatus(message ? "Not signed in." : "Enter a token to see the reports.");
  $("token").focus();
}

function start(token) {
  state.token = token;
  $("sign-in").hidden = true;
  $("auth-message").hidden = true;
  $("reports").hidden = false;
  $("filters").hidden = false;
  $("sign-out").hidden = false;
  refresh();
}

// --- filters --------------------------------------------------------------------------------

function readFilters() {
  return Object.fromEntries(FILTERS.map((name) => [name, $(`filter-${name}`).value.trim()]));
}

function filtersFromAddress() {
  const params = new URLSearchParams(window.location.search);
  for (const name of FILTERS) {
    if (params.has(name)) $(`filter-${name}`).value = params.get(name);
  }
}

function filtersToAddress(filters) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(filters)) {
    if (value && !(name === "refresh" && value === "15")) params.set(name, value);
  }
  const query = params.toString();
  window.history.replaceState(null, "", query ? `?${query}` : window.location.pathname);
}

// --- reading the reports --------------------------------------------------------------------

async function fetchReport(path, query) {
  const url = new URL(`/api/v1/reports/${path}`, window.location.origin);
  for (const [name, value] of Object.entries(query)) {
    if (value) url.searchParams.set(name, value);
  }
  const controller = new AbortController();
  const timeout = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  let response;
  try {
    response = await fetch(url, {
      headers: { Authorization: `Bearer ${state.token}`, Accept: "application/json" },
      cache: "no-store",
      signal: controller.signal,
    });
  } catch {
    throw new ReportError(0, "The gateway cannot be reached; trying again at the next refresh.");
  } finally {
    clearTimeout(timeout);
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new ReportError(response.status, describeError(response, body));
  return body;
}

function describeError(response, body) {
  const error = body && body.error;
  if (!error) return `The gateway answered ${response.status} ${response.statusText}.`;
  const fields = Object.entries(error.fields || {})
    .map(([field, messages]) => `${field}: ${[].concat(messages).join(" ")}`)
    .join("; ");
  return `${error.message}${fields ? ` (${fields})` : ""} [${response.status} ${error.code}]`;
}

function authMessage(error) {
  if (error.status === 401) {
    return "The gateway did not accept this token (401): it is unknown, revoked or expired. "
      + "Enter a valid token.";
  }
  return `This token may not read the reports (403): ${error.message} `
    + "Enter a token whose role may read reports.";
}

async function refresh() {
  stopPolling();
  if (!state.token) return;
  const generation = ++state.generation;
  const filters = readFilters();
  filtersToAddress(filters);
  setStatus("Refreshing…");
  const results = await Promise.allSettled(
    REPORTS.map((report) => fetchReport(report.path, report.query(filters))),
  );
  if (generation !== state.generation || !state.token) return; // a newer refresh took over
  let failed = 0;
  for (const [index, result] of results.entries()) {
    const report = REPORTS[index];
    if (result.status === "fulfilled") {
      cards.show(report.card, result.value, report.render);
      continue;
    }
    const error = result.reason;
    if (error.status === 401 || error.status === 403) {
      askForToken(authMessage(error));
      return;
    }
    failed += 1;
    cards.problem(report.card, error.message);
  }
  const seconds = Number(filters.refresh);
  const parts = [`Updated ${new Date().toLocaleTimeString()}`];
  if (failed) parts.push(`${failed} of ${REPORTS.length} reports could not be read`);
  parts.push(seconds ? `next refresh in ${seconds} s` : "automatic refresh off");
  if (!window.Chart) parts.push("charts unavailable: the chart library is not installed (make setup)");
  setStatus(parts.join(" · "), failed > 0 || !window.Chart);
  if (seconds) state.timer = setTimeout(refresh, seconds * 1000);
}

function stopPolling() {
  clearTimeout(state.timer);
  state.timer = null;
}

function setStatus(text, troubled = false) {
  $("status").textContent = text;
  $("status").classList.toggle("troubled", troubled);
}

// --- wiring ---------------------------------------------------------------------------------

function main() {
  filtersFromAddress();
  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    if (!token) return;
    keepToken(token, $("remember").checked);
    $("token").value = "";
    start(token);
  });
  $("sign-out").addEventListener("click", () => askForToken(""));
  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    refresh();
  });
  $("filters").addEventListener("change", () => refresh());
  // A hidden tab stops asking; it catches up as soon as it is looked at again.
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) stopPolling();
    else if (state.token) refresh();
  });
  const token = storedToken();
  if (token) start(token);
  else askForToken("");
}

main();
