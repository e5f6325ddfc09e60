// How numbers from the reports read on the page. Rates are fractions in [0, 1]
// or null (a rate over nothing); amounts are decimal text, per currency.

const NONE = "–";

export function count(value) {
  return value === null || value === undefined ? NONE : Number(value).toLocaleString();
}

export function percent(fraction) {
  if (fraction === null || fraction === undefined) return NONE;
  return `${(fraction * 100).toFixed(1)}%`;
}

export function score(value) {
  return value === null || value === undefined ? NONE : Number(value).toFixed(2);
}

export function hours(value) {
  return value === null || value === undefined ? NONE : `${Number(value).toFixed(1)} h`;
}

export function money(amount, currency) {
  if (amount === null || amount === undefined) return NONE;
  try {
    return Number(amount).toLocaleString(undefined, { style: "currency", currency });
  } catch {
    return `${amount} ${currency}`; // a code Intl does not know
  }
}

// {"GBP": "1000.00", "EUR": "5.00"} as one line, largest first.
export function amounts(byCurrency) {
  const entries = Object.entries(byCurrency || {}).sort((a, b) => Number(b[1]) - Number(a[1]));
  return entries.length ? entries.map(([currency, amount]) => money(amount, currency)).join(" + ") : NONE;
}

// Seconds as a person reads a wait: 45 s, 12 min, 3.5 h, 2.0 d.
export function duration(seconds) {
  if (seconds === null || seconds === undefined) return NONE;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 86400) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} d`;
}

// "As of 01/12/2026, 14:23:07 · lag 4 s": the newest event in the view, and now minus it.
export function freshness(report) {
  if (!report.as_of) return "No events applied yet.";
  const parts = [`As of ${new Date(report.as_of).toLocaleString()}`];
  if (report.lag_seconds !== null && report.lag_seconds !== undefined) {
    parts.push(`lag ${duration(report.lag_seconds)}`);
  }
  if (report.rebuilding) parts.push("rebuilding: numbers still growing back");
  return parts.join(" · ");
}

export function label(name, fallback) {
  return name === null || name === undefined || name === "" ? fallback : String(name);
}
