"""Every report's answer at one moment, without what changes by the second: what the views
hold, to compare before and after a rebuild (the rebuild test, the soak run)."""

VOLATILE = ("as_of", "lag_seconds", "rebuilding")
REPORTS = (
    "customers",
    "sales",
    "funnel",
    "segments",
    "satisfaction?group_by=agent",
    "service",
)


def snapshot(get):
    """({report: answer less VOLATILE}, {report: as_of}) read with `get(path)` (answers a
    response); None while one cannot answer yet (the funnel before its pipeline's first
    event)."""
    answers, freshness = {}, {}
    for report in REPORTS:
        response = get(f"/api/v1/reports/{report}")
        if response.status_code != 200:
            return None
        answer = response.json()
        answers[report] = {key: value for key, value in answer.items() if key not in VOLATILE}
        freshness[report] = answer["as_of"]
    return answers, freshness
