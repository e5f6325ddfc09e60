"""Rows inserted in bulk on PostgreSQL have their values written into the statement by
crm_common.db itself, not by psycopg2: they must read back exactly as psycopg2 would
have written them, whatever the text holds, and fail as psycopg2 fails."""

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    select,
)
from sqlalchemy.dialects import postgresql

from crm_common.db import _LITERALS, ROWS_PER_INSERT, insert_rows
from tests.support.fakes import database_for

metadata = MetaData()
samples = Table(
    "literal_samples",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("text", String),
    Column("big", BigInteger),
    Column("flag", Boolean),
    Column("at", DateTime(timezone=True)),
    Column("day", Date),
    Column("ratio", Float),
    Column("amount", Numeric(12, 2)),
)
TRICKY_TEXT = [
    "plain",
    "O'Brien",
    "''",
    "back\\slash\\'",
    "ends with a backslash \\",
    "-- not a comment",
    "/* nor this */",
    "%s and %(name)s and %%",
    "ünïcødé ☃ 𝄞",
    "line\nbreak\ttab",
    "",
    "$$dollar$$",
]


@pytest.fixture
def database(make_db_url):
    database = database_for(make_db_url("postgres", "literals"))
    metadata.create_all(database.engine)
    yield database
    database.engine.dispose()


def rows_of(texts):
    at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    return [
        {
            "id": number,
            "text": text,
            "big": -(2**40) + number if number % 2 else 2**40 + number,
            "flag": bool(number % 3),
            "at": at + timedelta(days=number),
            "day": date(2026, 1, 1) + timedelta(days=number),
            "ratio": None if number % 4 == 0 else number / 7,  # a float: psycopg2's own row
            "amount": Decimal("-12.50") if number % 5 == 0 else None,
        }
        for number, text in enumerate(texts, start=1)
    ]


def stored(session):
    return [row._asdict() for row in session.execute(select(samples).order_by(samples.c.id))]


def test_every_value_reads_back_as_it_was_written(database):
    rows = rows_of(TRICKY_TEXT)
    with database.session() as session:
        inserted = insert_rows(session, postgresql.insert(samples), rows, returning="id")
        session.commit()
        assert inserted == [row["id"] for row in rows]
        assert stored(session) == rows


def test_an_upsert_of_more_rows_than_a_statement_takes_answers_each_inserted_row(database):
    statement = postgresql.insert(samples).on_conflict_do_nothing(index_elements=["id"])
    rows = rows_of([f"row {number}" for number in range(ROWS_PER_INSERT + 5)])
    with database.session() as session:
        insert_rows(session, statement, rows[:3])
        inserted = insert_rows(session, statement, rows, returning="id")
        session.commit()
        assert sorted(inserted) == [row["id"] for row in rows[3:]]
        assert len(stored(session)) == len(rows)


@pytest.mark.parametrize(
    "value",
    [
        *TRICKY_TEXT,
        0,
        7,
        -7,
        -(2**63),
        True,
        False,
        None,
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
        datetime(2026, 1, 2, 3, 4, 5),
        date(2026, 2, 28),
    ],
)
def test_a_literal_is_the_one_psycopg2_writes(database, value):
    with database.session() as session:
        cursor = session.connection().connection.dbapi_connection.cursor()
        assert _LITERALS[type(value)](value) == cursor.mogrify("%s", (value,)).decode()


def test_text_with_a_nul_fails_as_with_psycopg2(database):
    with database.session() as session:
        with pytest.raises(ValueError, match="NUL"):
            insert_rows(session, postgresql.insert(samples), rows_of(["a\x00b"]))
