"""A customer's timeline: records of several services merged into one newest-first list.

The order is (time, kind, id), newest first, and a cursor is the mark of
the last item given (crm_common.cursors). Each source is asked for a page
after that mark: the interactions service understands marks itself; the
pipeline's deal list is asked from the equivalent (time, id) position. The
first `limit` of the merged pages are the first `limit` of the whole.
"""

from datetime import datetime

from crm_common import cursors
from gateway.http import ApiError

DEAL = "deal"
# Ids around every other: from a mark of another kind at the same instant, the deal
# list must start after all of that instant's deals, or before them all.
FIRST_ID = "00000000-0000-0000-0000-000000000000"
LAST_ID = "ffffffff-ffff-ffff-ffff-ffffffffffff"


def timeline_page(gateway, customer_id, limit, cursor=None):
    mark = None
    if cursor:
        try:
            mark = cursors.decode_mark(cursor)
        except ValueError:
            raise ApiError(400, "Invalid cursor.", fields={"cursor": ["Invalid cursor."]}) from None
    activity = gateway.rpc("interactions", "timeline", customer_id, limit, cursor, confirm=False)
    deals = gateway.rpc(
        "pipeline",
        "list_deals",
        {"customer_id": customer_id, "limit": limit, "cursor": deal_cursor(mark)},
        confirm=False,
    )
    items = [*activity["items"], *(deal_item(deal) for deal in deals["items"])]
    items.sort(key=order, reverse=True)
    page = items[:limit]
    more = len(items) > limit or activity["next_cursor"] or deals["next_cursor"]
    return {
        "items": page,
        "next_cursor": cursors.encode_mark(*order(page[-1])) if more and page else None,
    }


def order(item):
    return datetime.fromisoformat(item["at"]), item["kind"], item["id"]


def deal_cursor(mark):
    """The deal list's cursor for the deals after `mark` in the merged order."""
    if mark is None:
        return None
    at, kind, record_id = mark
    if kind != DEAL:
        record_id = LAST_ID if kind > DEAL else FIRST_ID
    return cursors.encode_position(at, record_id)


def deal_item(deal):
    return {
        "kind": DEAL,
        "id": deal["id"],
        "at": deal["created_at"],
        "customer_id": deal["customer_id"],
        "title": deal["title"],
        "pipeline_id": deal["pipeline_id"],
        "stage": deal["stage"],
        "status": deal["status"],
        "amount": deal["amount"],
        "currency": deal["currency"],
        "owner": deal["owner"],
        "closed_at": deal["closed_at"],
    }
