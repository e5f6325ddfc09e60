"""Records that belong to a customer the customers service owns.

Pipeline and interactions hold customer ids, not customers. A new record's
customer is checked through the customers service (`resolve_customer`), and
the owning service follows the customers' events: `customer_merged` moves
records to the survivor, `customer_erased` removes personal data.

Each such service keeps a small `customer_fates` table of what it learnt from
those events, so that a record created while a merge event is in flight still
lands on the survivor, and merges that arrive out of order (B into C before A
into B) still end at the last survivor. Writers of a customer's records and
the event effects meet on one lock per customer id (`lock_customer`).
"""

from datetime import datetime

from marshmallow import EXCLUDE, Schema, fields, validate
from sqlalchemy import String, update
from sqlalchemy.orm import Mapped, mapped_column

from crm_common.asking import ask
from crm_common.db import UTCDateTime, lock_for
from crm_common.errors import ValidationFailed

# Merges chain (A into B, then B into C); more hops than this means a cycle.
MAX_MERGE_HOPS = 100


class UnknownCustomer(ValidationFailed):
    """The request names a customer that does not exist or was erased."""


ID_LENGTH = validate.Length(min=1, max=36)


class CustomerMergedData(Schema):
    """What `record_merge` reads of the customers service's customer_merged.

    A tolerant reader: the fields it needs are required, the rest ignored,
    so an event missing one is rejected by the inbox, not failed half-way.
    """

    class Meta:
        unknown = EXCLUDE

    survivor_id = fields.String(required=True, validate=ID_LENGTH)
    merged_ids = fields.List(fields.String(validate=ID_LENGTH), required=True)


class CustomerErasedData(Schema):
    """What `record_erasure` reads of customer_erased; a service wanting more extends it."""

    class Meta:
        unknown = EXCLUDE

    customer_id = fields.String(required=True, validate=ID_LENGTH)
    # When the customers service erased the customer: every service records that moment.
    erased_at = fields.AwareDateTime(required=True, format="iso")


class CustomerFateMixin:
    """Columns of a service's `customer_fates` table; mix into its own Base."""

    __tablename__ = "customer_fates"

    customer_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    merged_into: Mapped[str | None] = mapped_column(String(36), index=True)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


def check_customer(proxy, customer_id, timeout):
    """The id to file a new record under: the customer's, or its survivor's if merged.

    Asks the customers service; raises UnknownCustomer for an id it does not
    know or erased, Unavailable when it cannot answer within `timeout`.
    Call it before the write transaction starts (see crm_common.db.make_engine).
    """
    found = ask(proxy, "resolve_customer", customer_id, timeout=timeout, service="customers")
    if found["state"] == "missing":
        raise UnknownCustomer(f"No customer {customer_id}.", {"customer_id": ["No such customer."]})
    if found["state"] == "erased":
        raise UnknownCustomer(
            f"Customer {customer_id} was erased.", {"customer_id": ["The customer was erased."]}
        )
    return found["id"]


def lock_customer(session, customer_id):
    lock_for(session, f"customer:{customer_id}")


def current_customer(session, fate_model, customer_id):
    """Inside the write transaction: the id after every merge this service has seen.

    Raises UnknownCustomer if an erasure arrived meanwhile. Takes the
    customer's lock, so the record is written before or after a merge's
    re-parenting, never beside it.
    """
    lock_customer(session, customer_id)
    for _ in range(MAX_MERGE_HOPS):
        fate = session.get(fate_model, customer_id)
        if fate is None:
            return customer_id
        if fate.erased_at is not None:
            raise UnknownCustomer(
                f"Customer {customer_id} was erased.",
                {"customer_id": ["The customer was erased."]},
            )
        if fate.merged_into is None:
            return customer_id
        customer_id = fate.merged_into
        lock_customer(session, customer_id)
    raise RuntimeError(f"customer merges of {customer_id} form a cycle")


def record_merge(session, fate_model, data, reparent):
    """Apply customer_merged: remember the merge, move the records to the survivor.

    `reparent(session, from_ids, to_id)` moves the service's own records.
    Safe to run again, and in any order relative to other merges.
    """
    merged_ids = sorted(set(data["merged_ids"]) - {data["survivor_id"]})
    for customer_id in sorted([*merged_ids, data["survivor_id"]]):
        lock_customer(session, customer_id)
    survivor = survivor_of(session, fate_model, data["survivor_id"])
    for merged_id in merged_ids:
        fate = session.get(fate_model, merged_id)
        if fate is None:
            session.add(fate_model(customer_id=merged_id, merged_into=survivor))
        elif fate.erased_at is None:
            fate.merged_into = survivor
    session.flush()
    # Customers merged earlier into one of these now resolve to the survivor in one hop;
    # their records moved to these then and move on now.
    session.execute(
        update(fate_model)
        .where(fate_model.merged_into.in_(merged_ids))
        .values(merged_into=survivor)
        .execution_options(synchronize_session=False)
    )
    reparent(session, merged_ids, survivor)


def record_erasure(session, fate_model, data, scrub):
    """Apply customer_erased: remember it, and `scrub(session, customer_id)` the records.

    The erasure is remembered at the event's `erased_at`, not at its arrival:
    every service holding the customer's records tells the same moment.
    """
    customer_id, erased_at = data["customer_id"], data["erased_at"]
    lock_customer(session, customer_id)
    fate = session.get(fate_model, customer_id)
    if fate is None:
        session.add(fate_model(customer_id=customer_id, erased_at=erased_at))
    else:
        fate.erased_at = erased_at
    session.flush()
    scrub(session, customer_id)


def survivor_of(session, fate_model, customer_id):
    """The id the customer's records are filed under: its last survivor's if it was merged.

    For reads (lists by customer): plain queries, no lock. An erased
    customer's (scrubbed) records stay under its id, so the chain ends there.
    """
    for _ in range(MAX_MERGE_HOPS):
        fate = session.get(fate_model, customer_id)
        if fate is None or fate.merged_into is None:
            return customer_id
        customer_id = fate.merged_into
    raise RuntimeError(f"customer merges of {customer_id} form a cycle")
