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
