// Report answers reshaped for a chart: plain functions, no page, no library.
//
// The sales report answers one row per owner and closing month, and the
// forecast one per expected close month, owner and currency; the dashboard
// shows them per owner and per month. Amounts are decimal text and are added
// in cents, so the sums are exact.

function cents(amount) {
  return Math.round(Number(amount) * 100);
}

function decimal(centsValue) {
  return (centsValue / 100).toFixed(2);
}

// [{owner, won, lost, winRate, wonAmount: {currency: "text"}}], by owner.
export function salesByOwner(performance) {
  const owners = new Map();
  for (const row of performance || []) {
    const entry = owners.get(row.owner) || { owner: row.owner, won: 0, lost: 0, wonCents: {} };
    entry.won += row.won;
    entry.lost += row.lost;
    for (const [currency, amount] of Object.entries(row.won_amount || {})) {
      entry.wonCents[currency] = (entry.wonCents[currency] || 0) + cents(amount);
    }
    owners.set(row.owner, entry);
  }
  return [...owners.values()]
    .sort((a, b) => String(a.owner ?? "").localeCompare(String(b.owner ?? "")))
    .map(({ wonCents, ...entry }) => ({
      ...entry,
      winRate: entry.won + entry.lost ? entry.won / (entry.won + entry.lost) : null,
      wonAmount: Object.fromEntries(
        Object.entries(wonCents).map(([currency, value]) => [currency, decimal(value)]),
      ),
    }));
}

// [{month, currency, deals, amount, weightedAmount}], by month then currency, owners added up.
export function forecastByMonth(forecast) {
  const months = new Map();
  for (const row of forecast || []) {
    const key = `${row.month} ${row.currency}`;
    const entry = months.get(key) || {
      month: row.month, currency: row.currency, deals: 0, amountCents: 0, weightedCents: 0,
    };
    entry.deals += row.deals;
    entry.amountCents += cents(row.amount);
    entry.weightedCents += cents(row.weighted_amount);
    months.set(key, entry);
  }
  return [...months.values()]
    .sort((a, b) => a.month.localeCompare(b.month) || a.currency.localeCompare(b.currency))
    .map(({ amountCents, weightedCents, ...entry }) => ({
      ...entry,
      amount: decimal(amountCents),
      weightedAmount: decimal(weightedCents),
    }));
}

// The currencies that occur in `amountsOf(row)` ({currency: amount}) over `rows`, sorted.
export function currencies(rows, amountsOf) {
  return [...new Set(rows.flatMap((row) => Object.keys(amountsOf(row))))].sort();
}

// Months from first to last, each once: a chart's x axis.
export function sortedUnique(values) {
  return [...new Set(values)].sort();
}

// The sales report takes months (YYYY-MM); the date filters are days.
export function monthOf(day) {
  return day ? day.slice(0, 7) : "";
}
