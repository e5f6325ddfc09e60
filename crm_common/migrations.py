"""Alembic, one migration history per service, run by the service at start.

Each service keeps its revisions in `services/<name>/migrations/` and a
two-line `env.py` that calls `run_env`. `upgrade` is safe when several
instances of one service start at once: on PostgreSQL they queue on an
advisory lock, on SQLite on the database's write lock.
"""

import zlib
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from crm_common.db import is_postgres, make_engine

SERVICES_DIR = Path(__file__).resolve().parent.parent / "services"


def alembic_config(service_name, url=None):
    config = Config()
    config.set_main_option("script_location", str(SERVICES_DIR / service_name / "migrations"))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def ensure_sqlite_dir(url):
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def upgrade(service_name, url, revision="head"):
    ensure_sqlite_dir(url)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            lock_key = zlib.crc32(f"migrate:{service_name}".encode())
            if is_postgres(engine):
                connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": lock_key})
                connection.commit()
            try:
                config = alembic_config(service_name)
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
            finally:
                if is_postgres(engine):
                    connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": lock_key})
                    connection.commit()
    finally:
        engine.dispose()


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
