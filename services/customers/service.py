"""The customers service: profiles, search, duplicates, merge, import/export, erasure."""

import uuid

from marshmallow import ValidationError
from sqlalchemy import select, update
from sqlalchemy.orm.exc import StaleDataError

from crm_common import cursors
from crm_common.db import Database, lock_for, lock_many, refresh_statistics
from crm_common.envelope import utcnow
from crm_common.handlers import event_handler
from crm_common.inbox import Inbox
from crm_common.outbox import Outbox
from crm_common.rpc import rpc
from crm_common.service import EventConsumer, EventProducer, ServiceBase
from services.customers import csvfiles, domain, store
from services.customers.events import CATALOG
from services.customers.exceptions import (
    ConcurrentUpdate,
    CustomerGone,
    CustomerNotFound,
    DuplicateCustomer,
    InvalidCustomer,
    InvalidImport,
)
from services.customers.importer import Import
from services.customers.models import AppliedEvent, Customer, CustomerMerge, DeadLetter, OutboxEvent
from services.customers.schemas import (
    CustomerInput,
    CustomerOutput,
    CustomerQuery,
    DuplicatesQuery,
    ExportQuery,
    MergeRequest,
    SegmentChangedData,
)

EXPECTED = (
    ConcurrentUpdate,
    CustomerGone,
    CustomerNotFound,
    DuplicateCustomer,
    InvalidCustomer,
    InvalidImport,
)
# Duplicate checks of concurrent writers meet on one of these buckets (PostgreSQL).
LOCK_BUCKETS = 256
# An import this large refreshes the planner's statistics afterwards.
STATISTICS_AFTER_ROWS = 1000

# Schemas keep no state between loads: one of each serves every worker.
_input = CustomerInput()
_output = CustomerOutput()


def load(schema, payload, **options):
    try:
        return schema.load(payload if payload is not None else {}, **options)
    except ValidationError as exc:
        raise InvalidCustomer("Invalid customer data.", exc.normalized_messages()) from None


class CustomersService(ServiceBase, EventProducer, EventConsumer):
    name = "customers"

    db = Database()
    outbox = Outbox(OutboxEvent, CATALOG)
    inbox = Inbox(AppliedEvent, DeadLetter)

    # --- one customer ----------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def create_customer(self, payload, allow_duplicate=False):
        data = load(_input, payload)
        self._lock_keys([data])
        if not allow_duplicate:
            self._refuse_duplicate(data)
        now = utcnow()
        row = store.new_row(str(uuid.uuid4()), data, now, now)
        store.insert_customers(self.db, [row])
        # Not in the session: the row is written; this object only makes the answer.
        customer = Customer(**dict(zip(store.CUSTOMER_COLUMNS, row, strict=True)))
        store.add_index_rows(self.db, [(customer.id, data)])
        self.outbox.add(
            self.db,
            "customer_created",
            customer.id,
            customer.version,
            domain.created_data(customer.id, data, now),
        )
        self.db.commit()
        return _output.dump(customer)

    @rpc(expected_exceptions=EXPECTED)
    def get_customer(self, customer_id):
        """One customer; a merged one resolves to its survivor (`resolved_from` says so)."""
        customer = self._get(customer_id)
        if customer.merged_into:
            survivor = self._get(customer.merged_into)
            return {**_output.dump(survivor), "resolved_from": customer.id}
        return _output.dump(customer)

    @rpc
    def resolve_customer(self, customer_id):
        """For services filing records under a customer: `{"id", "state"}`, never an error.

        `id` is the customer's, or its survivor's if it was merged; `state` is
        active, erased or missing (unknown id).
        """
        try:
            customer = self._get(str(uuid.UUID(str(customer_id))))
            if customer.merged_into:
                customer = self._get(customer.merged_into)
        except (ValueError, CustomerNotFound):
            return {"id": None, "state": "missing"}
        return {"id": customer.id, "state": "erased" if customer.erased_at else "active"}

    @rpc(expected_exceptions=EXPECTED)
    def update_customer(self, customer_id, payload, allow_duplicate=False):
        """Change the fields given; emits customer_updated with {field: [old, new]}."""
        patch = load(_input, payload, partial=True)
        customer = self._changeable(customer_id)
        before = store.profile_of(customer)
        diff = domain.changes(before, patch)
        if not diff:
            return _output.dump(customer)
        after = {**before, **patch}
        self._lock_keys([after])
        if not allow_duplicate and diff.keys() & {"name", "email", "phone", "company"}:
            self._refuse_duplicate(after, exclude={customer.id})
        self._change(customer, before, after, diff)
        self.outbox.add(
            self.db,
            "customer_updated",
            customer.id,
            customer.version,
            {"customer_id": customer.id, "changes": diff},
        )
        self.db.commit()
        return _output.dump(customer)

    @rpc(expected_exceptions=EXPECTED)
    def erase_customer(self, customer_id):
        """GDPR erasure of a person: the customer and every record merged into it.

        Personal data goes from the records, from the merge history and from
        this service's event log; anonymous records stay for the reports.
        Erasing a merged id erases that record alone.
        """
        customer = self._get(customer_id)
        if customer.erased_at:
            raise CustomerGone(f"Customer {customer.id} was erased.", details={"id": customer.id})
        merged = self.db.scalars(select(Customer).where(Customer.merged_into == customer.id)).all()
        people = [customer, *merged]
        self._lock_keys([store.profile_of(person) for person in people])
        now = utcnow()
        for person in people:
            before = store.profile_of(person)
            for field, value in domain.erased_profile().items():
                setattr(person, field, value)
            person.erased_at = now
            self._save(person, None if person.merged_into else before, None)
        ids = [person.id for person in people]
        for row in self.db.scalars(select(OutboxEvent).where(OutboxEvent.aggregate_id.in_(ids))):
            row.body = domain.scrubbed_event(row.body)
        for merge in self.db.scalars(
            select(CustomerMerge).where(
                CustomerMerge.merged_id.in_(ids) | CustomerMerge.survivor_id.in_(ids)
            )
        ):
            merge.snapshot = {}
        self.outbox.add_many(
            self.db,
            [
                (
                    "customer_erased",
                    person.id,
                    person.version,
                    {"customer_id": person.id, "erased_at": now.isoformat()},
                )
                for person in people
            ],
        )
        self.db.commit()
        return _output.dump(customer)

    @rpc(expected_exceptions=EXPECTED)
    def customer_data(self, customer_id):
        """Everything this service holds about one customer (GDPR access request)."""
        customer = self._get(customer_id)
        merges = self.db.scalars(
            select(CustomerMerge)
            .where(
                (CustomerMerge.survivor_id == customer.id)
                | (CustomerMerge.merged_id == customer.id)
            )
            .order_by(CustomerMerge.id)
        ).all()
        events = self.db.scalars(
            select(OutboxEvent.body)
            .where(OutboxEvent.aggregate_id == customer.id)
            .order_by(OutboxEvent.id)
        ).all()
        return {
            "customer": {**_output.dump(customer), "merged_into": customer.merged_into},
            "merges": [
                {
                    "survivor_id": m.survivor_id,
                    "merged_id": m.merged_id,
                    "merged_at": m.merged_at.isoformat(),
                    "merged_by": m.merged_by,
                    "snapshot": m.snapshot,
                }
                for m in merges
            ],
            "events": list(events),
        }

    # --- many customers --------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def list_customers(self, query=None):
        """Active customers, oldest first, `limit` at a time; `next_cursor` resumes."""
        params = load(CustomerQuery(), query)
        after_row = self._cursor(params["cursor"]) if params["cursor"] else None
        rows = store.search(self.db, params, params["limit"] + 1, after_row)
        page = rows[: params["limit"]]
        next_cursor = None
        if len(rows) > params["limit"]:
            next_cursor = cursors.encode_position(page[-1].created_at, page[-1].id)
        return {"items": _output.dump(page, many=True), "next_cursor": next_cursor}

    @rpc(expected_exceptions=EXPECTED)
    def export_customers(self, query=None):
        """Every active customer matching the filters, as CSV text."""
        params = load(ExportQuery(), query)
        return csvfiles.export(store.search(self.db, params))

    @rpc(expected_exceptions=EXPECTED)
    def import_customers(self, text, mapping=None, allow_duplicates=False):
        if not isinstance(text, str):
            raise InvalidImport("The file must be sent as text.", {"file": ["Not text."]})
        job = Import(self.db, self.outbox, utcnow(), allow_duplicates=bool(allow_duplicates))
        try:
            self._lock_buckets(range(LOCK_BUCKETS))
            result = job.run(text, mapping)
        except csvfiles.FileProblem as exc:
            self.db.rollback()
            raise InvalidImport(str(exc), {"file": [str(exc)]}) from None
        self.db.commit()
        if result["created"] + result["updated"] >= STATISTICS_AFTER_ROWS:
            refresh_statistics(self.db)
        return result

    @rpc(expected_exceptions=EXPECTED)
    def find_duplicates(self, query=None):
        """Likely duplicate pairs among active customers, a group of customers at a time."""
        params = load(DuplicatesQuery(), query)
        try:
            after = domain.decode_key_cursor(params["cursor"]) if params["cursor"] else None
        except ValueError:
            raise InvalidCustomer("Invalid cursor.", {"cursor": ["Invalid cursor."]}) from None
        page, next_key = store.duplicate_pairs(self.db, params["limit"], after)
        return {
            "items": [
                {"score": score, "matched": matched, "customers": _output.dump([a, b], many=True)}
                for score, matched, a, b in page
            ],
            "next_cursor": domain.encode_key_cursor(*next_key) if next_key else None,
        }

    @rpc(expected_exceptions=EXPECTED)
    def merge_customers(self, survivor_id, payload, actor=None):
        """Fold `merge_ids` into the survivor; customer_merged lets other services re-parent."""
        merge_ids = [str(value) for value in load(MergeRequest(), payload)["merge_ids"]]
        if str(survivor_id) in merge_ids or len(set(merge_ids)) != len(merge_ids):
            raise InvalidCustomer(
                "merge_ids must be distinct and must not contain the survivor.",
                {"merge_ids": ["Distinct ids other than the survivor's."]},
            )
        survivor = self._changeable(survivor_id)
        others = [self._changeable(merge_id) for merge_id in merge_ids]
        # Buckets first, then ids, each in one order: crossed merges wait, not deadlock.
        self._lock_keys([store.profile_of(person) for person in (survivor, *others)])
        for customer_id in sorted([survivor.id, *merge_ids]):
            lock_for(self.db, f"customers:id:{customer_id}")
        self.db.refresh(survivor)
        for other in others:
            self.db.refresh(other)
            if other.merged_into or other.erased_at:
                self._changeable(other.id)  # changed while we waited: say how
        before = store.profile_of(survivor)
        after = domain.merged_profile(before, [store.profile_of(other) for other in others])
        diff = domain.changes(before, after)
        now = utcnow()
        for other in others:
            self.db.add(
                CustomerMerge(
                    survivor_id=survivor.id,
                    merged_id=other.id,
                    merged_at=now,
                    merged_by=actor,
                    snapshot=store.profile_of(other),
                )
            )
            store.unindex(self.db, other.id, store.profile_of(other))
        # Merged customers leave without a version of their own moving (they emit no
        # event); those merged into them now resolve to the survivor in one step.
        self.db.execute(
            update(Customer)
            .where(Customer.id.in_(merge_ids) | Customer.merged_into.in_(merge_ids))
            .values(merged_into=survivor.id, company_key=None, name_block=None, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        self._change(survivor, before, after, diff)
        self.outbox.add(
            self.db,
            "customer_merged",
            survivor.id,
            survivor.version,
            {"survivor_id": survivor.id, "merged_ids": merge_ids, "changes": diff},
        )
        self.db.commit()
        return {**_output.dump(survivor), "merged_ids": merge_ids}

    # --- events from other services --------------------------------------------------------

    # Handler names are part of their queues' names: never rename one.
    @event_handler("reports", "segment_changed", requeue_on_error=True)
    def apply_segment_changed(self, body):
        self.inbox.apply(body, apply_segment, SegmentChangedData())

    # --- helpers ---------------------------------------------------------------------------

    def _get(self, customer_id):
        customer = self.db.get(Customer, str(customer_id)) if customer_id else None
        if customer is None:
            raise CustomerNotFound(f"No customer {customer_id}.", details={"id": str(customer_id)})
        return customer

    def _changeable(self, customer_id):
        customer = self._get(customer_id)
        if customer.merged_into:
            raise CustomerGone(
                f"Customer {customer.id} was merged into {customer.merged_into}.",
                details={"id": customer.id, "merged_into": customer.merged_into},
            )
        if customer.erased_at:
            raise CustomerGone(f"Customer {customer.id} was erased.", details={"id": customer.id})
        return customer

    def _change(self, customer, before, after, diff):
        for field in diff:
            setattr(customer, field, after[field])
        self._save(customer, before, after)

    def _save(self, customer, before, after):
        """Flush a changed customer (its version moves on) and refresh its search rows.

        `after` is None for a customer leaving the active ones (merged, erased).
        """
        customer.updated_at = utcnow()
        for column, value in store.keys_of(after or {}).items():
            setattr(customer, column, value)
        # Named before the flush: a failed flush expires the row, and reading it
        # again would need a rollback first (a 500 instead of the 409).
        customer_id = customer.id
        try:
            self.db.flush()
        except StaleDataError:
            raise ConcurrentUpdate(
                f"Customer {customer_id} changed meanwhile; read it again and retry.",
                details={"id": customer_id},
            ) from None
        store.unindex(self.db, customer_id, before)
        if after is not None:
            store.add_index_rows(self.db, [(customer.id, after)])

    def _refuse_duplicate(self, profile, exclude=()):
        found = domain.best_match(profile, store.candidates(self.db, profile, exclude))
        if found:
            candidate, score, matched = found
            raise DuplicateCustomer(
                f"Customer {candidate['id']} is likely the same ({', '.join(matched)} match).",
                {field: [f"Matches customer {candidate['id']}."] for field in matched},
                {"existing_id": candidate["id"], "score": score, "matched": matched},
            )

    def _lock_keys(self, profiles):
        """Writers whose duplicate keys meet wait for each other (no check-then-insert race)."""
        keys = set()
        for profile in profiles:
            block = domain.name_block(profile.get("name"), profile.get("company"))
            keys.update(key for key in (profile.get("email"), profile.get("phone"), block) if key)
        self._lock_buckets({domain.bucket(key, LOCK_BUCKETS) for key in keys})

    def _lock_buckets(self, buckets):
        # In one round trip, in one order everywhere (no deadlock).
        lock_many(self.db, [f"customers:keys:{bucket}" for bucket in buckets])

    @staticmethod
    def _cursor(cursor):
        try:
            return cursors.decode_position(cursor)
        except ValueError:
            raise InvalidCustomer("Invalid cursor.", {"cursor": ["Invalid cursor."]}) from None


def apply_segment(session, envelope):
    """File the customer under its new segment, unless a newer move was applied already."""
    data = envelope["data"]
    session.execute(
        update(Customer)
        .where(Customer.id == data["customer_id"], Customer.segment_sequence < envelope["sequence"])
        .values(segment=data["to_segment"], segment_sequence=envelope["sequence"])
    )
