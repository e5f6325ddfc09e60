"""Customers at size: a CSV import of generated rows, then searches, through the gateway."""

import random
import sqlite3
import tempfile
import time

import requests
from psycopg2.extras import execute_values
from sqlalchemy import create_engine

from bench.summary import Row, at_least, under

FIRST = (
    "Ada Grace Alan Joan Katherine Barbara Edsger Donald Margaret Linus Guido Ken Dennis "
    "Radia Frances Hedy Annie Tim Vint Leslie Zoë José Renée Björn Søren"
).split()
LAST = (
    "Lovelace Hopper Turing Clarke Johnson Liskov Dijkstra Knuth Hamilton Torvalds Rossum "
    "Thompson Ritchie Perlman Allen Lamarr Easley Berners-Lee Cerf Lamport Núñez Müller"
).split()
COMPANIES = [
    f"{word} {kind}"
    for word in (
        "Acme",
        "Globex",
        "Initech",
        "Umbrella",
        "Hooli",
        "Stark",
        "Wayne",
        "Tyrell",
        "Cyberdyne",
        "Soylent",
    )
    for kind in ("Inc", "Labs", "Group", "Ltd")
]


STATUSES = ("lead", "prospect", "customer")
TAGS = ("vip", "newsletter", "partner")


SYLLABLES = "ba ko ri ma tu le no sa vi de lo ka mi ra zu fe ti go hu ne".split()


def surname(rng):
    """One of 8,000 made-up surnames, so that names repeat about as often as in life."""
    return "".join(rng.choice(SYLLABLES) for _ in range(3)).capitalize()


def generate_csv(rows, seed=7, duplicate_share=0.02):
    """`rows` customers with unique emails and phones; a share repeat an earlier row's phone."""
    rng = random.Random(seed)
    lines = ["name,email,phone,company,owner,status,tags"]
    phones = []
    for number in range(rows):
        first, last = rng.choice(FIRST), surname(rng)
        phone = f"+1555{number:07d}"
        if phones and rng.random() < duplicate_share:
            phone = rng.choice(phones)
        phones.append(phone)
        lines.append(
            f"{first} {last},{first.lower()}.{number}@example.com,{phone},"
            f"{rng.choice(COMPANIES)} {number % 2500},owner-{number % 20},{rng.choice(STATUSES)},"
            f"{rng.choice(TAGS)}"
        )
    return "\n".join(lines) + "\n"


def sqlite_insert_rate(rows):
    """Baseline: the same number of plain rows inserted into SQLite in one transaction."""
    with tempfile.TemporaryDirectory() as scratch:
        connection = sqlite3.connect(f"{scratch}/baseline.db")
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(
            "CREATE TABLE people "
            "(id TEXT PRIMARY KEY, name TEXT, email TEXT, phone TEXT, company TEXT)"
        )
        connection.execute("CREATE INDEX ix_email ON people (email)")
        values = [
            (str(n), f"Name {n}", f"p{n}@example.com", f"+1555{n:07d}", "Acme") for n in range(rows)
        ]
        started = time.perf_counter()
        with connection:
            connection.executemany("INSERT INTO people VALUES (?, ?, ?, ?, ?)", values)
        elapsed = time.perf_counter() - started
        connection.close()
    return rows / elapsed


def postgres_insert_rate(rows, url):
    """Baseline on PostgreSQL: as many plain rows inserted in one transaction, in pages of a
    thousand (psycopg2's execute_values), into a scratch table of the database at `url`."""
    engine = create_engine(url)
    values = [
        (str(n), f"Name {n}", f"p{n}@example.com", f"+1555{n:07d}", "Acme") for n in range(rows)
    ]
    try:
        with engine.begin() as connection:
            cursor = connection.connection.dbapi_connection.cursor()
            cursor.execute(
                "CREATE TEMPORARY TABLE people "
                "(id TEXT PRIMARY KEY, name TEXT, email TEXT, phone TEXT, company TEXT)"
            )
            cursor.execute("CREATE INDEX ix_email ON people (email)")
            started = time.perf_counter()
            execute_values(cursor, "INSERT INTO people VALUES %s", values, page_size=1000)
            connection.commit()
            elapsed = time.perf_counter() - started
    finally:
        engine.dispose()
    return rows / elapsed


def unsent_events(sqlite_url):
    connection = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
    try:
        return connection.execute(
            "SELECT count(*) FROM outbox WHERE published_at IS NULL"
        ).fetchone()[0]
    finally:
        connection.close()


def import_rate(base_url, token, text):
    started = time.perf_counter()
    response = requests.post(
        f"{base_url}/api/v1/customers/import",
        data=text.encode(),
        timeout=900,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/csv"},
    )
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    result = response.json()
    return (
        result["created"] + result["updated"] + result["duplicates"] + result["rejected"]
    ) / elapsed, result


SEARCHES = (
    "ada",
    "lovelace",
    "zoe nunez",
    "acme",
    "globex labs",
    "grace hopper 12",
    "5550000123",
    "ada.4@example.com",
    "berners",
)


def search_paths():
    paths = [f"/api/v1/customers?q={query}" for query in SEARCHES]
    paths += [
        "/api/v1/customers?q=ada&status=customer",
        "/api/v1/customers?tag=vip&limit=100",
        "/api/v1/customers?owner=owner-7",
    ]
    return paths


ROWS = [
    Row(
        "customer_created events applied to the reports view, from a backlog, SQLite (per s)",
        "events_applied_per_s",
        "raw_consume_ack_per_s",
        "raw kombu consume + ack",
    ),
    Row(
        "customers created over RPC, one at a time, SQLite (per s)",
        "rpc_create_customer_per_s",
        "rpc_health_per_s",
        "`health` RPC on the same service",
    ),
    Row(
        "customers created over RPC, one at a time, PostgreSQL (per s)",
        "rpc_create_customer_pg_per_s",
        "rpc_health_pg_per_s",
        "`health` RPC on the same service",
    ),
    Row(
        "customers imported from CSV through the gateway, SQLite (rows per s)",
        "import_rows_per_s",
        "sqlite_insert_rows_per_s",
        "plain SQLite insert of as many rows",
        target=at_least(5000),
    ),
    Row(
        "customers imported from CSV through the gateway, PostgreSQL (rows per s)",
        "import_rows_pg_per_s",
        "pg_insert_rows_per_s",
        "plain PostgreSQL insert of as many rows",
        target=at_least(5000),
    ),
    Row(
        "customer search at the import's size through the gateway, p95 (ms)",
        "search_p95_ms",
        "health_p95_ms",
        "GET /health on the same gateway, p95",
        target=under(50),
    ),
    Row(
        "raw kombu publish, persistent, confirmed (per s)",
        "raw_publish_confirmed_per_s",
        "raw_consume_ack_per_s",
        "raw kombu consume + ack",
    ),
]
