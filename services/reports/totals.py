"""Totals tables: rows of counters under a key, moved by adding deltas."""

from sqlalchemy.dialects import postgresql, sqlite

from crm_common.db import insert_rows, is_postgres

# Upserts built once per table and columns: compiling one anew for every row
# cost more than running it.
_UPSERTS = {}


def add_to(session, model, key_columns, key, deltas):
    """Add `deltas` to the row of `model` under `key`, creating it if new."""
    add_many(session, model, key_columns, {key: deltas})


def add_many(session, model, key_columns, moves):
    """Add each of `moves` ({key: {column: delta}}) to its row of `model`, creating new rows.

    One statement (an upsert) for them all, so two reports instances adding to
    the same row at once both count; rows in key order, so that two such
    statements wait for each other instead of deadlocking.
    """
    if not moves:
        return
    columns = tuple(sorted({column for deltas in moves.values() for column in deltas}))
    insert_rows(
        session,
        _upsert(session, model, tuple(key_columns), columns),
        [
            {
                **dict(zip(key_columns, key, strict=True)),
                **{column: deltas.get(column, 0) for column in columns},
            }
            for key, deltas in sorted(moves.items())
        ],
    )


def _upsert(session, model, key_columns, columns):
    postgres = is_postgres(session.get_bind())
    cache_key = (model, postgres, key_columns, columns)
    statement = _UPSERTS.get(cache_key)
    if statement is None:
        table = model.__table__
        insert = (postgresql.insert if postgres else sqlite.insert)(table)
        statement = _UPSERTS[cache_key] = insert.on_conflict_do_update(
            index_elements=list(key_columns),
            set_={column: table.c[column] + insert.excluded[column] for column in columns},
        )
    return statement
