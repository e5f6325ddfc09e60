"""Sales performance and the weighted forecast: pure rules, no SQL.

Both views are sums over deals, kept as totals per (owner, month, currency)
and moved by each deal event: the deal's old state takes back what it added,
the new state adds its own. Amounts are whole cents; sums in different
currencies are never added together.

- Performance counts a closed deal in the month it closed: won deals add to
  `won` and `won_cents`, lost deals to `lost`. Answered per owner and month:
  `win_rate` = won / (won + lost) over every currency, null when neither;
  the won amount per currency.
- The forecast counts an open deal in the month it is expected to close
  (`unscheduled` without a date): `amount_cents` and `weighted_cents`
  (amount x the probability of its stage now, rounded to the cent per deal).

An answer covers a window of months, of closing for performance and of
expected close for the forecast. Without `from` and `to` it is the months
from DEFAULT_MONTHS_BACK before the current one (UTC) to DEFAULT_MONTHS_AHEAD
after it, with the unscheduled deals: every owner and month since the start
grew with the data (250 KB at 200,000 deals) and a client wants the recent
year and what comes. Given either, the window is exactly what was asked
(either end may stay open) and names months only.
"""

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

PERFORMANCE = "performance"
FORECAST = "forecast"
UNSCHEDULED = "unscheduled"
# A missing owner is stored as this key (key columns cannot be null) and shown as null.
NO_OWNER = ""


@dataclass(frozen=True)
class DealState:
    """What the sales views read of a deal (the `deal` of every deal event)."""

    status: str
    owner: str | None
    currency: str
    amount_cents: int
    probability: Decimal
    expected_close_date: str | None
    closed_at: str | None


def to_cents(amount):
    return int((Decimal(amount) * 100).to_integral_value(ROUND_HALF_EVEN))


def to_basis_points(probability):
    return round(Decimal(str(probability)) * 10000)


def from_cents(cents):
    """`cents` as an amount with two decimals ("-12.05"), exactly, from integers alone."""
    whole, part = divmod(abs(cents), 100)
    return f"{'-' if cents < 0 else ''}{whole}.{part:02d}"


def weighted_cents(amount_cents, probability):
    return int((Decimal(amount_cents) * Decimal(probability)).to_integral_value(ROUND_HALF_EVEN))


DEFAULT_MONTHS_BACK = 11
DEFAULT_MONTHS_AHEAD = 12


@dataclass(frozen=True)
class Window:
    """Months (YYYY-MM, inclusive; None: open) an answer covers, and whether it takes
    the unscheduled forecast."""

    first: str | None
    last: str | None
    unscheduled: bool


def window(first, last, today):
    """The window asked for (`first`, `last`), or the default one around `today`."""
    if first or last:
        return Window(first, last, unscheduled=False)
    return Window(
        shift_month(today, -DEFAULT_MONTHS_BACK),
        shift_month(today, DEFAULT_MONTHS_AHEAD),
        unscheduled=True,
    )


def shift_month(day, months):
    """'YYYY-MM' of the month `months` after (before, if negative) the month of `day`."""
    index = day.year * 12 + day.month - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def month_of(iso_text):
    """'2027-03' of an ISO date or timestamp (UTC)."""
    return iso_text[:7]


def contributions(state):
    """What one deal state adds to the views: [(view, (owner, month, currency), {column: n})]."""
    if state is None:
        return []
    owner = state.owner or NO_OWNER
    if state.status == "open":
        month = month_of(state.expected_close_date) if state.expected_close_date else UNSCHEDULED
        return [
            (
                FORECAST,
                (owner, month, state.currency),
                {
                    "deals": 1,
                    "amount_cents": state.amount_cents,
                    "weighted_cents": weighted_cents(state.amount_cents, state.probability),
                },
            )
        ]
    key = (owner, month_of(state.closed_at), state.currency)
    if state.status == "won":
        return [(PERFORMANCE, key, {"won": 1, "lost": 0, "won_cents": state.amount_cents})]
    return [(PERFORMANCE, key, {"won": 0, "lost": 1, "won_cents": 0})]


def moves(old, new):
    """The changes to the totals when a deal goes from state `old` to `new` (either may be None)."""
    taken = [
        (view, key, {column: -n for column, n in deltas.items()})
        for view, key, deltas in contributions(old)
    ]
    return taken + contributions(new)


def win_rate(won, lost):
    return won / (won + lost) if won + lost else None
