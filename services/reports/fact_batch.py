"""The facts a batch of events changes, read and written a few statements per batch.

Applied one at a time, each event read its fact (flushing every change of the
batch so far first) and added a new one through the unit of work: the cost
grew with the square of the batch. A `FactBatch` reads the facts of the
whole batch in one locked query, lets the events change them in memory in
their order, and inserts the facts the batch created in multi-row statements.
"""

from sqlalchemy import select

from crm_common.db import insert_rows, plain_insert


class FactBatch:
    """The facts of `model` with the given keys (its one-column primary key).

    Those stored are locked in key order, the one order of every transaction,
    so that two instances applying overlapping batches wait for each other
    instead of deadlocking. Two creating the same fact at once: the second
    insert fails with IntegrityError, and its batch is applied again (the
    inbox and the rebuild retry it), finding the fact stored.
    """

    def __init__(self, session, model, keys):
        self.session = session
        self.model = model
        key = model.__mapper__.primary_key[0]
        self.facts = {
            getattr(fact, key.key): fact
            for fact in session.scalars(
                select(model).where(key.in_(sorted(keys))).order_by(key).with_for_update()
            )
        }
        self.created = []

    def find(self, key):
        """The fact of `key`, stored or created earlier in the batch; None if neither."""
        return self.facts.get(key)

    def get(self, key, make):
        """The fact of `key`: stored, created earlier in the batch, or made now by `make()`."""
        fact = self.find(key)
        if fact is None:
            fact = self.facts[key] = make()
            self.created.append(fact)
        return fact

    def insert_created(self):
        """Store the facts the batch created (made, never added to the session)."""
        columns = [column.key for column in self.model.__table__.columns]
        insert_rows(
            self.session,
            plain_insert(self.model),
            [{column: getattr(fact, column) for column in columns} for fact in self.created],
        )


def apply_in_batch(session, model, keys, apply_event, envelopes):
    """`apply_event(facts, envelope)` for each of `envelopes` in order, on the facts of
    `model` with those keys: as each would apply alone, in a few statements."""
    facts = FactBatch(session, model, keys)
    for envelope in envelopes:
        apply_event(facts, envelope)
    facts.insert_created()
