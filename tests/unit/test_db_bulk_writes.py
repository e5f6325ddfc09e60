"""Rows written in bulk (crm_common.db) read back like rows the ORM writes, on SQLite too."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from crm_common.db import UTCDateTime, bulk_insert, insert_rows, make_engine

AT = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
metadata = MetaData()
moments = Table(
    "moments", metadata, Column("id", Integer, primary_key=True), Column("at", UTCDateTime)
)


@pytest.fixture
def session(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'bulk.db'}")
    metadata.create_all(engine)
    with Session(engine) as session:
        yield session
    engine.dispose()


@pytest.mark.parametrize("at", [AT, AT.replace(microsecond=250)])
def test_bulk_inserted_times_match_a_query_for_the_same_time(session, at):
    bulk_insert(session, moments, ("id", "at"), [(1, at)])
    insert_rows(session, sqlite.insert(moments), [{"id": 2, "at": at}])
    session.execute(moments.insert(), [{"id": 3, "at": at}])

    assert session.scalars(select(moments.c.id).where(moments.c.at == at)).all() == [1, 2, 3]
    stored = session.connection().exec_driver_sql("SELECT DISTINCT at FROM moments").all()
    assert len(stored) == 1
