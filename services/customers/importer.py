"""A CSV import in one transaction: create, update, report duplicates and bad rows.

Rows are validated one by one, so one bad row never costs the good ones;
the writes happen together at the end, in bulk, so 100,000 rows take
seconds. A row whose email belongs to a customer (in the database or
earlier in the file) updates that customer with the fields the row gives;
any other row creates one, unless it looks like a duplicate of an existing
customer (same phone, similar name in the same company).
"""

import uuid
from datetime import timedelta

from marshmallow import ValidationError
from sqlalchemy.orm.exc import StaleDataError

from services.customers import csvfiles, domain, store
from services.customers.exceptions import ConcurrentUpdate
from services.customers.models import Customer
from services.customers.schemas import CsvRowInput

# Rows listed one by one in the answer; the counts cover every row.
MAX_LISTED = 1000


class Import:
    def __init__(self, session, outbox, now, allow_duplicates=False):
        self.session = session
        self.outbox = outbox
        self.now = now
        self.allow_duplicates = allow_duplicates
        self.created = {}  # id -> profile, in file order
        self.updated = {}  # id -> (customer, profile before)
        self.rejected = []
        self.duplicates = []
        self.counts = {"rejected": 0, "duplicates": 0, "updated": 0, "folded": 0}

    def run(self, text, mapping=None):
        columns, width, rows, ignored = csvfiles.read(text, mapping)
        valid = self.validate(columns, width, rows)
        self.plan(valid)
        self.write()
        return {
            "created": len(self.created),
            "updated": self.counts["updated"],
            "unchanged": len(self.updated) - self.counts["updated"],
            "folded": self.counts["folded"],
            "duplicates": self.counts["duplicates"],
            "rejected": self.counts["rejected"],
            "rejected_rows": self.rejected,
            "duplicate_rows": self.duplicates,
            "ignored_columns": ignored,
        }

    def validate(self, columns, width, rows):
        schema = CsvRowInput()
        valid = []
        for line, cells in rows:
            if len(cells) > width:
                self.reject(line, {"_row": [f"{len(cells)} cells where the header has {width}."]})
                continue
            try:
                valid.append((line, schema.load(csvfiles.payload(columns, cells), partial=True)))
            except ValidationError as exc:
                self.reject(line, exc.normalized_messages())
        return valid

    def plan(self, valid):
        session = self.session
        by_email = {
            c.email: c
            for c in store.by_keys(session, Customer.email, (d.get("email") for _, d in valid))
        }
        self.by_phone = group(
            store.by_keys(session, Customer.phone, (d.get("phone") for _, d in valid)), "phone"
        )
        blocks = (domain.name_block(d.get("name"), d.get("company")) for _, d in valid)
        self.by_block = group(store.by_keys(session, Customer.name_block, blocks), "name_block")
        created_by_email = {}
        for line, data in valid:
            email = data.get("email")
            if email in created_by_email:
                # Completes a customer created earlier in the file.
                self.counts["folded"] += 1
                fill(self.created[created_by_email[email]], data)
            elif email in by_email:
                self.update(by_email[email], data)
            elif "name" not in data:
                self.reject(line, {"name": ["Missing data for required field."]})
            else:
                profile = domain.new_profile(**data)
                existing = None if self.allow_duplicates else self.likely_duplicate(profile)
                if existing:
                    self.report_duplicate(line, *existing)
                    continue
                customer_id = str(uuid.uuid4())
                self.created[customer_id] = profile
                if email:
                    created_by_email[email] = customer_id
                self.remember(customer_id, profile)

    def likely_duplicate(self, profile):
        candidates = self.by_phone.get(profile["phone"], []) + self.by_block.get(
            domain.name_block(profile["name"], profile["company"]), []
        )
        return domain.best_match(profile, candidates)

    def remember(self, customer_id, profile):
        """Later rows of the file are checked against this new customer too."""
        entry = {**profile, "id": customer_id}
        if profile["phone"]:
            self.by_phone.setdefault(profile["phone"], []).append(entry)
        block = domain.name_block(profile["name"], profile["company"])
        if block:
            self.by_block.setdefault(block, []).append(entry)

    def update(self, customer, data):
        if customer.id not in self.updated:
            self.updated[customer.id] = (customer, store.profile_of(customer))
        profile = store.profile_of(customer)
        fill(profile, data)
        for field in data:
            setattr(customer, field, profile[field])

    def reject(self, line, errors):
        self.counts["rejected"] += 1
        if len(self.rejected) < MAX_LISTED:
            self.rejected.append({"line": line, "errors": errors})

    def report_duplicate(self, line, candidate, score, matched):
        self.counts["duplicates"] += 1
        if len(self.duplicates) < MAX_LISTED:
            self.duplicates.append(
                {"line": line, "existing_id": candidate["id"], "score": score, "matched": matched}
            )

    def write(self):
        session, now = self.session, self.now
        if self.created:
            # A microsecond apart: the list keeps the file's order.
            rows = [
                store.new_row(customer_id, profile, now + timedelta(microseconds=position), now)
                for position, (customer_id, profile) in enumerate(self.created.items())
            ]
            store.insert_customers(session, rows)
            store.add_index_rows(session, self.created.items())
        events = [
            (
                "customer_created",
                customer_id,
                1,
                domain.created_data(customer_id, profile, now + timedelta(microseconds=position)),
            )
            for position, (customer_id, profile) in enumerate(self.created.items())
        ]
        changed = []
        for customer, before in self.updated.values():
            profile = store.profile_of(customer)
            diff = domain.changes(before, profile)
            if not diff:
                continue
            for column, value in store.keys_of(profile).items():
                setattr(customer, column, value)
            customer.updated_at = now
            changed.append((customer, before, profile, diff))
        self.counts["updated"] = len(changed)
        # One flush for all: each changed customer's version moves on by one.
        try:
            session.flush()
        except StaleDataError:
            raise ConcurrentUpdate(
                "Customers this file updates changed meanwhile; nothing was imported. Retry.",
            ) from None
        for customer, before, profile, diff in changed:
            store.unindex(session, customer.id, before)
            store.add_index_rows(session, [(customer.id, profile)])
            events.append(
                (
                    "customer_updated",
                    customer.id,
                    customer.version,
                    {"customer_id": customer.id, "changes": diff},
                )
            )
        self.outbox.add_many(session, events)


def fill(profile, data):
    """Apply a row to a profile: fields replace, attribute cells add to the attributes."""
    for field, value in data.items():
        if field == "attributes":
            profile["attributes"] = {**profile["attributes"], **value}
        else:
            profile[field] = value


def group(customers, column):
    grouped = {}
    for customer in customers:
        grouped.setdefault(getattr(customer, column), []).append(
            {**store.profile_of(customer), "id": customer.id}
        )
    return grouped
