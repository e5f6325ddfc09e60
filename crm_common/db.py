"""SQLAlchemy 2 for Nameko services: one engine per container, one session per worker.

A service declares `db = Database()` and works with `self.db` as a plain
SQLAlchemy `Session`: it commits explicitly, and whatever it did not commit is
rolled back when the worker ends. The schema comes from the service's alembic
migrations, never from `create_all` at runtime.
"""

import contextlib
import json
import logging
import zlib
from datetime import UTC, date, datetime

import psycopg2
from nameko.extensions import DependencyProvider
from psycopg2.extras import execute_values
from sqlalchemy import (
    DateTime,
    MetaData,
    String,
    TypeDecorator,
    bindparam,
    create_engine,
    event,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, sessionmaker

from crm_common.config import db_url_key

log = logging.getLogger(__name__)


def make_engine(url):
    """An engine with the settings every service wants for its kind of database."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _tune_sqlite)
        # pysqlite's own transaction handling skips BEGIN before reads;
        # SQLAlchemy's explicit BEGIN gives every statement a transaction.
        # It stays deferred: in WAL mode readers never block, and a writer
        # holds the lock only from its first write to its commit. Under
        # eventlet a SQLite call blocks the whole process, so a write
        # transaction must not wait on the network (RPC, publish) before it
        # commits, or other workers would stall on the lock it holds.
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
        return engine
    # The unit of work updates many rows of a table with one executemany: psycopg2's own
    # runs a statement (a round trip) per row; SQLAlchemy's batch mode sends them in pages.
    # Rows with a version column are still updated one by one, their count checked.
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=10,
        executemany_mode="values_plus_batch",
    )


def _tune_sqlite(dbapi_connection, _record):
    # Hand transaction control to SQLAlchemy's "begin" event above.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    # 64 MiB of page cache (the default is 2 MiB): big writes touch many index pages.
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


def is_postgres(engine):
    return engine.dialect.name == "postgresql"


def lock_for(session, key, shared=False):
    """Hold `key` until the session's transaction ends; others wanting it wait.

    A shared hold waits only for an exclusive one (and holds it off): many
    transactions may share `key` while none may take it alone.

    PostgreSQL advisory lock. SQLite needs none: it has one writer at a time,
    and a process never yields inside a write transaction (see make_engine).
    """
    if is_postgres(session.get_bind()):
        function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        session.execute(text(f"SELECT {function}(:key)"), {"key": lock_number(key)})


def lock_number(key):
    """The number of the PostgreSQL advisory lock that stands for `key`."""
    return zlib.crc32(key.encode())


def lock_many(session, keys, shared=False):
    """lock_for() each of `keys` in one round trip, in one order for every transaction:
    two taking overlapping sets then wait for each other instead of deadlocking."""
    lock_modes(session, dict.fromkeys(keys, shared))


def lock_modes(session, modes):
    """lock_many() of `modes` ({key: shared}), each key held shared or alone as it says,
    all in one order (a key asked for both ways is held alone)."""
    if not modes or not is_postgres(session.get_bind()):
        return
    numbers = {}
    for key, shared in modes.items():
        number = lock_number(key)
        numbers[number] = numbers.get(number, True) and shared
    ordered = sorted(numbers.items())
    # The subquery's order is the order the locks are taken in.
    session.execute(
        text(
            "SELECT count(CASE WHEN shared THEN pg_advisory_xact_lock_shared(key)::text "
            "ELSE pg_advisory_xact_lock(key)::text END) FROM "
            "(SELECT key, shared FROM unnest(CAST(:keys AS bigint[]), "
            "CAST(:shared AS boolean[])) AS asked (key, shared) ORDER BY key) AS ordered"
        ),
        {"keys": [number for number, _ in ordered], "shared": [shared for _, shared in ordered]},
    )


class Database(DependencyProvider):
    """Injects a fresh `Session` per worker, bound to the service's own database."""

    def setup(self):
        url = self.container.config[db_url_key(self.container.service_name)]
        self.engine = make_engine(url)
        self.sessionmaker = sessionmaker(bind=self.engine, expire_on_commit=False)
        self.sessions = {}

    def stop(self):
        self.engine.dispose()

    def kill(self):
        self.engine.dispose()

    def get_dependency(self, worker_ctx):
        session = self.sessionmaker()
        self.sessions[worker_ctx] = session
        return session

    def worker_teardown(self, worker_ctx):
        session = self.sessions.pop(worker_ctx, None)
        if session is not None:
            close_quietly(session)

    def session(self):
        """A session outside any worker, for other extensions (outbox relay, inbox)."""
        return self.sessionmaker()


def close_quietly(session):
    """Close a worker's session even when its connection broke (the database went away).

    Raised from a worker's teardown, the driver's error would make Nameko kill
    the whole container: one outage of the database would stop the service.
    """
    try:
        session.close()
    except Exception as exc:  # the driver's own errors too, unwrapped
        log.warning("dropped a broken database connection: %s", exc)
        with contextlib.suppress(Exception):
            session.invalidate()


def find_database(container):
    """The container's `Database` provider, for extensions that share its engine."""
    for provider in container.dependencies:
        if isinstance(provider, Database):
            return provider
    raise LookupError(f"service {container.service_name!r} declares no Database()")


NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def make_base():
    """A fresh declarative base: each service owns its own metadata."""

    class Base(DeclarativeBase):
        metadata = MetaData(naming_convention=NAMING_CONVENTION)

    return Base


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in and out, on SQLite (which stores no zone) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware one (UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def bulk_insert(session, table, columns, rows):
    """Insert many rows (tuples of Python values in `columns` order) in the session's transaction.

    On SQLite the rows go to the driver's executemany, each value through its
    column type's bind processor: building SQLAlchemy's parameter sets for a
    million rows costs more than writing them. Elsewhere SQLAlchemy's batched
    insert is the fast path.
    """
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name == "sqlite":
        # The dialect's own processor, as SQLAlchemy's statements use: the generic type's
        # leaves an aware datetime to the driver, which writes it as another text
        # ("+00:00", no zero microseconds) that equal times in queries never match.
        processors = [
            table.c[column].type.dialect_impl(dialect).bind_processor(dialect) for column in columns
        ]
        if any(processors):
            rows = [
                tuple(
                    value if process is None else process(value)
                    for process, value in zip(processors, row, strict=True)
                )
                for row in rows
            ]
        placeholders = ", ".join("?" for _ in columns)
        connection.exec_driver_sql(
            f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({placeholders})", rows
        )
    else:
        connection.execute(table.insert(), [dict(zip(columns, row, strict=True)) for row in rows])


_INSERT_NEW = {}
_REPLACE = {}
# Rows per multi-row INSERT: well within SQLite's 32,766 and PostgreSQL's 65,535 parameters.
ROWS_PER_INSERT = 1000


_MULTI_ROW_SQL = {}
_RECORDSET_SQL = {}
_PLAIN_INSERTS = {}


def plain_insert(model):
    """The model's INSERT statement, one object for insert_rows to know it again."""
    if model not in _PLAIN_INSERTS:
        _PLAIN_INSERTS[model] = model.__table__.insert()
    return _PLAIN_INSERTS[model]


def insert_rows(session, statement, rows, returning=None):
    """Run the INSERT `statement` (an upsert, say) for `rows` (dicts of the same columns'
    values); with `returning` (a column's name), answers that column of each row inserted.

    The driver's executemany of an upsert makes a round trip per row, and
    SQLAlchemy building a statement of a thousand rows costs more than running
    it. On PostgreSQL the rows go as ONE JSON parameter that the statement
    unpacks (`json_to_recordset`), in their order: psycopg2 quoting each value
    of a multi-row VALUES, and PostgreSQL parsing it, had been most of a
    rebuild's time; a JSON text is made in C and parsed once. Rows JSON cannot
    carry as they are (a NaN, a NUL character, a value of another type) go the
    older way, psycopg2's execute_values, a statement per thousand rows.
    """
    if not rows:
        return []
    if not is_postgres(session.get_bind()):
        found = []
        for first in range(0, len(rows), ROWS_PER_INSERT):
            chunk = statement.values(rows[first : first + ROWS_PER_INSERT])
            if returning is None:
                session.execute(chunk)
            else:
                found += session.scalars(chunk.returning(statement.table.c[returning]))
        return found
    columns = tuple(rows[0])
    payload = _as_json(rows)
    if payload is None:
        sql = _values_sql(session, statement, columns)
        arguments = [tuple(row[column] for column in columns) for row in rows]
    else:
        sql = _recordset_sql(session, statement, columns)
        arguments = None
    if returning is not None:
        sql += f" RETURNING {returning}"
    cursor = session.connection().connection.dbapi_connection.cursor()
    try:
        if arguments is None:
            cursor.execute(sql, (payload,))
            found = cursor.fetchall() if returning is not None else []
        else:
            found = execute_values(
                cursor, sql, arguments, page_size=ROWS_PER_INSERT, fetch=returning is not None
            )
    except psycopg2.Error as exc:
        # Past SQLAlchemy, the driver's error is raised bare: wrapped as SQLAlchemy wraps
        # it (IntegrityError for a duplicate key), for the retries that catch those. A
        # bare one killed a rebuild racing a live consumer until its lease ran out.
        raise DBAPIError.instance(sql, None, exc, psycopg2.Error) from None
    finally:
        cursor.close()
    return [row[0] for row in found] if returning is not None else []


def _json_value(value):
    """What JSON cannot hold as it is, as the text PostgreSQL reads for its column."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise _NotJson


class _NotJson(TypeError):
    pass


def _as_json(rows):
    """`rows` as one JSON text, or None when one of their values cannot go that way: not
    JSON (NaN, infinity, a type JSON has no word for) or not text PostgreSQL keeps (a NUL
    character, which it refuses in a JSON string taken as text)."""
    try:
        payload = json.dumps(
            rows, default=_json_value, allow_nan=False, ensure_ascii=False, separators=(",", ":")
        )
    except (_NotJson, ValueError):
        return None
    return None if "\\u0000" in payload else payload


def _conflict_clause(session, statement, columns):
    """The ` ON CONFLICT ...` end of `statement` as PostgreSQL reads it ("" if none)."""
    compiled = str(
        statement.values({column: bindparam(column) for column in columns}).compile(
            dialect=session.get_bind().dialect
        )
    )
    conflict = compiled.find(" ON CONFLICT")
    return compiled[conflict:] if conflict >= 0 else ""


def _values_sql(session, statement, columns):
    sql = _MULTI_ROW_SQL.get((statement, columns))
    if sql is None:
        sql = _MULTI_ROW_SQL[(statement, columns)] = (
            f"INSERT INTO {statement.table.name} ({', '.join(columns)}) VALUES %s"
            + _conflict_clause(session, statement, columns)
        )
    return sql


def _recordset_sql(session, statement, columns):
    sql = _RECORDSET_SQL.get((statement, columns))
    if sql is None:
        dialect = session.get_bind().dialect
        quote = dialect.identifier_preparer.quote
        table = statement.table
        # Text for text columns, whatever their length: a value too long then fails as
        # it did in a VALUES list, on the table's own column.
        shapes = ", ".join(
            f"{quote(column)} "
            + (
                "text"
                if isinstance(table.c[column].type, String)
                else table.c[column].type.compile(dialect=dialect)
            )
            for column in columns
        )
        names = ", ".join(quote(column) for column in columns)
        sql = _RECORDSET_SQL[(statement, columns)] = (
            f"INSERT INTO {table.name} ({names}) SELECT {names} "
            f"FROM json_to_recordset(%s) AS given ({shapes})"
            + _conflict_clause(session, statement, columns)
        )
    return sql


def insert_new(session, model, key_columns, rows, returning=None):
    """Insert those of `rows` (dicts of column values) whose key is not taken yet, in one
    statement; a row another transaction is inserting meanwhile waits for it. With
    `returning` (a column's name), answers that column of the rows it inserted."""
    if not rows:
        return []
    postgres = is_postgres(session.get_bind())
    statement = _INSERT_NEW.get((model, postgres))
    if statement is None:
        insert = postgresql.insert if postgres else sqlite.insert
        statement = _INSERT_NEW[(model, postgres)] = insert(model.__table__).on_conflict_do_nothing(
            index_elements=list(key_columns)
        )
    return insert_rows(session, statement, rows, returning)


def replace_rows(session, model, key_columns, rows):
    """Insert `rows` (dicts of the same columns' values) into `model`'s table in one
    statement, each replacing the row under its key if there is one."""
    if not rows:
        return
    postgres = is_postgres(session.get_bind())
    columns = tuple(column for column in rows[0] if column not in key_columns)
    cache_key = (model, postgres, tuple(key_columns), columns)
    statement = _REPLACE.get(cache_key)
    if statement is None:
        insert = (postgresql.insert if postgres else sqlite.insert)(model.__table__)
        statement = _REPLACE[cache_key] = insert.on_conflict_do_update(
            index_elements=list(key_columns),
            set_={column: insert.excluded[column] for column in columns},
        )
    insert_rows(session, statement, rows)


def refresh_statistics(session):
    """Let SQLite's planner see what a big write changed (PostgreSQL's autovacuum does this).

    Without statistics, SQLite guesses that an indexed equality is selective
    and may walk a third of a table through it instead of a short list.
    """
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("PRAGMA analysis_limit=1000")
        connection.exec_driver_sql("ANALYZE")
        session.commit()
