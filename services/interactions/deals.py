"""The optional deal of an interaction, checked through the pipeline service.

The pipeline owns deals; its `resolve_deal(deal_id)` answers
`{"id", "customer_id", "state"}` (open, won, lost or missing) and never raises.
Like `crm_common.customer_refs.check_customer`, this runs before the write
transaction starts and answers Unavailable when the pipeline cannot answer
(`crm_common.asking.ask`).
"""

from crm_common.asking import ask
from crm_common.customer_refs import UnknownCustomer, check_customer
from services.interactions.exceptions import UnknownDeal


def check_deal(pipeline, customers, deal_id, customer_id, timeout):
    """The id of deal `deal_id` if it exists and belongs to `customer_id` (a current id).

    A deal still filed under a customer since merged into `customer_id`
    belongs to it too: the customers service says where its customer went.
    """
    found = ask(pipeline, "resolve_deal", deal_id, timeout=timeout, service="pipeline")
    if found.get("state") in (None, "missing") or not found.get("id"):
        raise UnknownDeal(f"No deal {deal_id}.", {"deal_id": ["No such deal."]})
    owner = found.get("customer_id")
    if owner and owner != customer_id:
        try:
            owner = check_customer(customers, owner, timeout)
        except UnknownCustomer:
            owner = None
    if owner != customer_id:
        raise UnknownDeal(
            f"Deal {deal_id} belongs to another customer.",
            {"deal_id": ["The deal belongs to another customer."]},
        )
    return found["id"]
