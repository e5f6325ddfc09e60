"""Satisfaction and service-desk formulas: pure rules, no SQL.

Satisfaction, over the answers asked for (one per ticket, 1 to 5):
- `responses` = number of answers; `distribution` = answers per score 1-5;
- `csat_avg` = mean score; `csat_pct` = share of answers scoring 4 or 5.

Service desk, over the tickets opened in the period asked for:
- `opened` = tickets opened; `resolved` = those resolved or closed now (a
  reopened ticket counts again once resolved again);
  `resolution_rate` = resolved / opened;
- `median_first_response_seconds` = median of (first response - open) over
  the tickets answered; `median_resolution_seconds` = median of (newest
  resolve - open) over the tickets resolved now;
- `breached` = tickets past their first-response or resolution target
  without the step (the interactions service's `ticket_sla_breached`);
  `sla_breach_rate` = breached / opened, with the two kinds counted apart in
  `first_response_breaches` and `resolution_breaches`.

A rate or mean over nothing is null. Rates and means are rounded to 4
places, seconds to 1.
"""

from dataclasses import dataclass
from statistics import median

SCORES = (1, 2, 3, 4, 5)
SATISFIED = (4, 5)


def rate(part, whole):
    return round(part / whole, 4) if whole else None


def satisfaction(counts):
    """The satisfaction figures of `counts` = {score: answers}."""
    responses = sum(counts.get(score, 0) for score in SCORES)
    total = sum(score * counts.get(score, 0) for score in SCORES)
    return {
        "responses": responses,
        "csat_avg": rate(total, responses),
        "csat_pct": rate(sum(counts.get(score, 0) for score in SATISFIED), responses),
        "distribution": [{"score": score, "count": counts.get(score, 0)} for score in SCORES],
    }


@dataclass(frozen=True)
class Ticket:
    """What the service figures read of one ticket."""

    first_response_seconds: float | None
    resolved: bool
    resolution_seconds: float | None
    response_breached: bool
    resolution_breached: bool


def service_levels(tickets):
    """The service-desk figures of `tickets` (an iterable of Ticket), counted in Python.

    The view counts in SQL (ticket_view.service_report) and hands the counts
    to levels(); this spells out the same rules over plain tickets.
    """
    counts = dict.fromkeys(COUNTS, 0)
    first_responses, resolutions = [], []
    for ticket in tickets:
        counts["opened"] += 1
        if ticket.first_response_seconds is not None:
            first_responses.append(ticket.first_response_seconds)
        if ticket.resolved:
            counts["resolved"] += 1
            if ticket.resolution_seconds is not None:
                resolutions.append(ticket.resolution_seconds)
        counts["first_response_breaches"] += ticket.response_breached
        counts["resolution_breaches"] += ticket.resolution_breached
        counts["breached"] += ticket.response_breached or ticket.resolution_breached
    return levels(
        counts,
        median(first_responses) if first_responses else None,
        median(resolutions) if resolutions else None,
    )


# What levels() takes counted: tickets opened, resolved, breached either target, and each.
COUNTS = ("opened", "resolved", "breached", "first_response_breaches", "resolution_breaches")


def levels(counts, median_first_response, median_resolution):
    """The service-desk figures from the counts (COUNTS) and the two medians (None over none)."""
    return {
        "opened": counts["opened"],
        "resolved": counts["resolved"],
        "resolution_rate": rate(counts["resolved"], counts["opened"]),
        "median_first_response_seconds": _rounded(median_first_response),
        "median_resolution_seconds": _rounded(median_resolution),
        "breached": counts["breached"],
        "first_response_breaches": counts["first_response_breaches"],
        "resolution_breaches": counts["resolution_breaches"],
        "sla_breach_rate": rate(counts["breached"], counts["opened"]),
    }


def _rounded(seconds):
    return round(float(seconds), 1) if seconds is not None else None
