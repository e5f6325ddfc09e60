"""Totals tables: rows of counters under a key, moved by adding deltas."""

from sqlalchemy.dialects import postgresql, sqlite

from crm_common.db import is_postgres


def add_to(session, model, key_columns, key, deltas):
    """Add `deltas` to the row of `model` under `key`, creating it if new.

    One statement (an upsert), so two reports instances adding to the same
    row at once both count.
    """
    insert = postgresql.insert if is_postgres(session.get_bind()) else sqlite.insert
    statement = insert(model).values(**dict(zip(key_columns, key, strict=True)), **deltas)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=key_columns,
            set_={column: getattr(model, column) + statement.excluded[column] for column in deltas},
        )
    )
