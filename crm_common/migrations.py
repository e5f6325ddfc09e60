"""Alembic, one migration history per service, run by the service at start.

Each service keeps its revisions in `services/<name>/migrations/` and a
two-line `env.py` that calls `run_env`. `upgrade` is safe when several
instances of one service start at once: on PostgreSQL they queue on an
advisory lock, on SQLite on a lock file beside the database.
"""

import fcntl
import zlib
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from crm_common.db import make_engine

SERVICES_DIR = Path(__file__).resolve().parent.parent / "services"


def alembic_config(service_name, url=None):
    config = Config()
    config.set_main_option("script_location", str(SERVICES_DIR / service_name / "migrations"))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def sqlite_path(url):
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None


def upgrade(service_name, url, revision="head"):
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    try:
        with engine.connect() as connection, _one_migrator(service_name, connection, path):
            config = alembic_config(service_name)
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()


@contextmanager
def _one_migrator(service_name, connection, sqlite_file):
    """Let one starting instance migrate while the others wait, then find nothing to do."""
    if sqlite_file is not None:
        # SQLite's deferred transactions would fail, not wait: queue on a file lock.
        with open(f"{sqlite_file}.migrate-lock", "w") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            yield
        return
    key = zlib.crc32(f"migrate:{service_name}".encode())
    connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
    connection.commit()
    try:
        yield
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
        connection.commit()


def downgrade(service_name, url, revision):
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            config = alembic_config(service_name)
            config.attributes["connection"] = connection
            command.downgrade(config, revision)
    finally:
        engine.dispose()


def run_env(context, metadata):
    """Body of every service's `env.py`."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(context, connection, metadata)
        return
    engine = make_engine(context.config.get_main_option("sqlalchemy.url"))
    try:
        with engine.connect() as connection:
            _run(context, connection, metadata)
    finally:
        engine.dispose()


def _run(context, connection, metadata):
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        # SQLite alters tables by copying them; batch mode does that for us.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def create_dead_letters_table(op):
    """The `dead_letters` table (crm_common.dead_letters) as every consumer's migration
    first created it. Frozen: a later change is a new revision, never an edit here."""
    import sqlalchemy as sa

    from crm_common.db import UTCDateTime

    op.create_table(
        "dead_letters",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("message_key", sa.String(length=64), nullable=False),
        sa.Column("handler", sa.String(length=100), nullable=True),
        sa.Column("producer", sa.String(length=32), nullable=True),
        sa.Column("event_type", sa.String(length=64), nullable=True),
        sa.Column("event_id", sa.String(length=36), nullable=True),
        sa.Column("aggregate_id", sa.String(length=64), nullable=True),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_failed_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_failed_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("claimed_until", UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
        sa.UniqueConstraint(
            "handler", "message_key", name=op.f("uq_dead_letters_handler_message_key")
        ),
    )
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.create_index(
            "ix_dead_letters_first_failed_at_id", ["first_failed_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_dead_letters_status_next_attempt_at", ["status", "next_attempt_at"], unique=False
        )


def normalize_sqlite_times(op, table, columns):
    """On SQLite, rewrite the times an earlier bulk insert stored as the driver's text
    ("2026-01-31 12:00:00+00:00", zero microseconds left out) as every other write stores
    them ("2026-01-31 12:00:00.000000"), so that equality and cursor filters match them.
    Nothing to do on PostgreSQL, which stores times, not text."""
    connection = op.get_bind()
    if connection.dialect.name != "sqlite":
        return
    for column in columns:
        connection.execute(
            text(
                f"UPDATE {table} SET {column} = CASE length({column}) "
                f"WHEN 25 THEN substr({column}, 1, 19) || '.000000' "
                f"ELSE substr({column}, 1, 26) END "
                f"WHERE {column} LIKE '%+00:00'"
            )
        )


def add_outbox_log_positions(op):
    """The outbox's `log_position` (crm_common.outbox): the rows already there keep their
    ids as positions, so they stay in the order they were served in and every cursor
    `events_since` gave out (an id then) still means the same place. Frozen, as above."""
    import sqlalchemy as sa

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "log_position",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                nullable=True,
            )
        )
    op.execute("UPDATE outbox SET log_position = id")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f("uq_outbox_log_position"), ["log_position"])
        batch_op.create_index(
            "ix_outbox_unnumbered",
            ["id"],
            unique=False,
            postgresql_where=sa.text("log_position IS NULL"),
            sqlite_where=sa.text("log_position IS NULL"),
        )


def drop_outbox_log_positions(op):
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_unnumbered")
        batch_op.drop_constraint(batch_op.f("uq_outbox_log_position"), type_="unique")
        batch_op.drop_column("log_position")
