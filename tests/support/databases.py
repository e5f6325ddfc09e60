"""Test databases, empty or already at a service's newest schema.

Running a service's migrations takes about a second per database (more on a
loaded machine), and most tests want four migrated databases. So each
service's migrations run once into a template: a SQLite file per test
session, a PostgreSQL database shared by every run on the server whose name
carries a hash of the migrations (a changed migration makes a new template).
A test's database is then a copy: a file copy, or `CREATE DATABASE ...
TEMPLATE`. Tests of the migrations themselves ask for an empty database.

PostgreSQL's DROP DATABASE waits for a checkpoint of the whole server, seconds
when other work writes beside the tests. So a process of its own drops the
databases tests are done with while the next tests run; the session waits
for it only at its end.
"""

import hashlib
import shutil
import subprocess
import sys
import uuid
import zlib
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from crm_common import migrations

ROOT = Path(__file__).resolve().parents[2]
# What a service's schema is built from: its revisions and the shared code they call.
SHARED_SCHEMA_CODE = ("crm_common/migrations.py", "crm_common/db.py")
# Templates are made one at a time on the server, whichever run or worker asks first.
TEMPLATE_LOCK = zlib.crc32(b"crm-test-templates")
DROP_SECONDS = 300


def schema_hash(service):
    """Changes whenever anything that builds `service`'s schema does."""
    digest = hashlib.sha256()
    sources = sorted((migrations.SERVICES_DIR / service / "migrations").rglob("*.py"))
    for path in [*sources, *(ROOT / name for name in SHARED_SCHEMA_CODE)]:
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def database_url(server_url, database):
    return make_url(server_url).set(database=database).render_as_string(hide_password=False)


class PostgresDatabases:
    """Databases on the server `admin` (an AUTOCOMMIT engine) connects to."""

    def __init__(self, admin):
        self.admin = admin
        self.templates = {}
        self.dropper = subprocess.Popen(
            [sys.executable, "-m", __name__, admin.url.render_as_string(hide_password=False)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            text=True,
        )

    def create(self, name, schema=None):
        """A new database's name: empty, or a copy of `schema`'s template."""
        database = f"crm_test_{name}_{uuid.uuid4().hex[:12]}"
        source = f' TEMPLATE "{self.template(schema)}"' if schema else ""
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{database}"{source}'))
        return database

    def template(self, service):
        if service not in self.templates:
            self.templates[service] = self._make_template(service)
        return self.templates[service]

    def _make_template(self, service):
        """Build the template unless a run before made it; it appears whole or not at all
        (a run killed halfway leaves only a database under another name)."""
        template = f"crm_test_template_{service}_{schema_hash(service)}"
        building = f"{template}_building"
        with self.admin.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": TEMPLATE_LOCK})
            try:
                exists = connection.execute(
                    text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": template}
                ).first()
                if not exists:
                    connection.execute(text(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)'))
                    connection.execute(text(f'CREATE DATABASE "{building}"'))
                    migrations.upgrade(service, database_url(self.admin.url, building))
                    connection.execute(text(f'ALTER DATABASE "{building}" RENAME TO "{template}"'))
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": TEMPLATE_LOCK})
        return template

    def drop(self, databases):
        """Have the dropper drop `databases` (no longer used) while the tests go on."""
        for database in databases:
            self.dropper.stdin.write(f"{database}\n")
        self.dropper.stdin.flush()

    def close(self):
        """Wait until every database handed to `drop` is gone."""
        self.dropper.stdin.close()
        self.dropper.wait(timeout=DROP_SECONDS)


class SqliteTemplates:
    """Each service's schema migrated once into a file under `folder`, copied for each test."""

    def __init__(self, folder):
        self.folder = Path(folder)

    def copy(self, service, path):
        """The URL of a new database file at `path`, at `service`'s newest schema."""
        template = self.folder / f"{service}.db"
        if not template.exists():
            migrations.upgrade(service, f"sqlite:///{template}")
        shutil.copyfile(template, path)
        return f"sqlite:///{path}"


def drop_each_named(server_url, names):
    """The dropper: drop each database named in `names` (lines) as the name arrives."""
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        for line in names:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{line.strip()}" WITH (FORCE)'))
    admin.dispose()


if __name__ == "__main__":
    drop_each_named(sys.argv[1], sys.stdin)
