"""Paging a merged timeline loses and repeats nothing, even when times tie across kinds."""

from datetime import UTC, datetime, timedelta

from crm_common import cursors
from gateway.timeline import timeline_page

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def uid(n):
    return f"00000000-0000-4000-8000-{n:012d}"


class FakeGateway:
    """Answers like the interactions timeline and the pipeline's deal list, from lists."""

    def __init__(self, activity, deals):
        self.activity = activity  # [(at, kind, id)]
        self.deals = deals  # [(at, id)]

    def rpc(self, service, method, *args, confirm=True):
        if method == "timeline":
            _, limit, cursor = args
            mark = cursors.decode_mark(cursor) if cursor else None
            rows = sorted((r for r in self.activity if mark is None or r < mark), reverse=True)
            return {
                "items": [
                    {"kind": kind, "id": rid, "at": at.isoformat(), "customer_id": "c"}
                    for at, kind, rid in rows[:limit]
                ],
                "next_cursor": "more" if len(rows) > limit else None,
            }
        query = args[0]
        after = cursors.decode_position(query["cursor"]) if query["cursor"] else None
        rows = sorted((r for r in self.deals if after is None or r < after), reverse=True)
        return {
            "items": [
                {
                    "id": rid,
                    "created_at": at.isoformat(),
                    "customer_id": "c",
                    "title": "t",
                    "pipeline_id": "p",
                    "stage": "lead",
                    "status": "open",
                    "amount": "1.00",
                    "currency": "EUR",
                    "owner": None,
                    "closed_at": None,
                }
                for at, rid in rows[: query["limit"]]
            ],
            "next_cursor": "more" if len(rows) > query["limit"] else None,
        }


def test_pages_of_every_size_list_everything_once_in_order():
    tie = T0 + timedelta(hours=1)
    activity = [(tie, "ticket", uid(1)), (tie, "feedback", uid(2)), (T0, "interaction", uid(3))]
    activity += [(T0 + timedelta(minutes=n), "interaction", uid(10 + n)) for n in range(5)]
    deals = [(tie, uid(4)), (tie, uid(5)), (T0 - timedelta(days=1), uid(6))]
    gateway = FakeGateway(activity, deals)
    expected = sorted(
        [(at, kind, rid) for at, kind, rid in activity] + [(at, "deal", rid) for at, rid in deals],
        reverse=True,
    )
    for limit in range(1, 13):
        seen, cursor = [], None
        while True:
            page = timeline_page(gateway, "c", limit, cursor)
            seen += [
                (datetime.fromisoformat(item["at"]), item["kind"], item["id"])
                for item in page["items"]
            ]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert seen == expected, limit
