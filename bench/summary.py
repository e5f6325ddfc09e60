"""The summary of a bench run: each figure beside its baseline, their ratio, its target and
whether the target was met, as one table and as JSON.

Each part of the bench declares its rows (`Row`) beside the code that measures them and
records its figures in one dict under the rows' keys; bench/run.py builds the table from
every part's rows. A row whose figure was not recorded (its part did not run) is left out;
one recorded as None shows as not measured.

    ROWS = [
        Row("customer creates through the gateway (per s)", "gateway_creates_per_s",
            "bare_http_per_s", "a bare Nameko @http endpoint", target=ratio_at_least(0.4)),
    ]
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    """A bound on the figure, or on its ratio to the baseline (`on_ratio`)."""

    bound: float
    at_most: bool
    on_ratio: bool = False

    def met(self, value, ratio):
        found = ratio if self.on_ratio else value
        if found is None:
            return None
        return found < self.bound if self.at_most else found >= self.bound

    def describe(self):
        bound = f"{self.bound:.0%} of the baseline" if self.on_ratio else number(self.bound)
        return ("under " if self.at_most else "at least ") + bound


def under(bound):
    return Target(bound, at_most=True)


def at_least(bound):
    return Target(bound, at_most=False)


def ratio_at_least(share):
    return Target(share, at_most=False, on_ratio=True)


def ratio_under(share):
    return Target(share, at_most=True, on_ratio=True)


@dataclass(frozen=True)
class Row:
    label: str
    key: str
    base_key: str | None = None
    base_label: str = ""
    target: Target | None = None


def build(rows, figures):
    """The table's entries (dicts, as they go into the JSON), in the order of `rows`."""
    entries = []
    for row in rows:
        if row.key not in figures:
            continue
        value = figures[row.key]
        base = figures.get(row.base_key) if row.base_key else None
        ratio = value / base if value is not None and base else None
        met = row.target.met(value, ratio) if row.target and value is not None else None
        entries.append(
            {
                "figure": row.label,
                "key": row.key,
                "value": value,
                "baseline": base,
                "baseline_is": row.base_label if row.base_key else "",
                "ratio": ratio,
                "target": row.target.describe() if row.target else "",
                "result": verdict(row.target, value, met),
            }
        )
    return entries


def verdict(target, value, met):
    if target is None:
        return ""
    if value is None or met is None:
        return "not measured"
    return "pass" if met else "FAIL"


def number(value):
    if value is None:
        return "-"
    if value == 0:
        return "0"
    if abs(value) < 10:
        return f"{value:.2f}" if abs(value) < 1 else f"{value:.1f}"
    return f"{value:,.0f}"


def ratio_text(ratio):
    if ratio is None:
        return ""
    return f"{ratio:.2f}" if ratio < 100 else f"{ratio:,.0f}"


HEADINGS = ("figure", "value", "baseline", "ratio", "target", "result", "baseline is")


def cells(entry):
    """The entry's cells as text, in the order of HEADINGS."""
    return (
        entry["figure"],
        number(entry["value"]) if entry["value"] is not None else "skipped",
        number(entry["baseline"]) if entry["baseline_is"] else "",
        ratio_text(entry["ratio"]),
        entry["target"],
        entry["result"],
        entry["baseline_is"],
    )


def lines(entries, width=64):
    """The table as text: one line per entry, long labels cut at `width`."""
    rows = [HEADINGS]
    for entry in entries:
        label, *rest = cells(entry)
        rows.append((label if len(label) <= width else label[: width - 1] + "…", *rest))
    widths = [max(len(row[n]) for row in rows) for n in range(len(HEADINGS))]
    out = []
    for label, *numbers, target, result, base_label in rows:
        out.append(
            "  ".join(
                [
                    label.ljust(widths[0]),
                    *(cell.rjust(widths[n + 1]) for n, cell in enumerate(numbers)),
                    target.ljust(widths[4]),
                    result.ljust(widths[5]),
                    base_label,
                ]
            ).rstrip()
        )
    return out


def markdown(entries):
    """The table as Markdown, for the README."""
    out = ["| " + " | ".join(HEADINGS) + " |", "|---|---:|---:|---:|---|---|---|"]
    out += ["| " + " | ".join(cells(entry)) + " |" for entry in entries]
    return out


if __name__ == "__main__":
    # The table of a results file as Markdown, for the README:
    #   python -m bench.summary bench/results/latest.json
    import json
    import sys

    print("\n".join(markdown(json.load(open(sys.argv[1]))["summary"])))
