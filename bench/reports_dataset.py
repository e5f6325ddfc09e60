"""The reports benchmark's data set: seeded once, kept as a PostgreSQL template, copied per run.

    python -m bench.reports_dataset --customers N --deals N --interactions N --tickets N

makes the data set unless it is there already and prints what seeding it
took (JSON). The template is named for the sizes and for the code the rows
come from (the reports service, the shared plumbing, the bench's generator
and seeder): change any of them and the next run seeds again. Each time it
seeds, it first applies a sample both with the service's effect functions
and with the seeder (bench/reports_seed.py), into two scratch databases, and
stops unless every view table comes out the same.

It runs in a process of its own: COPY needs psycopg2 as it is, not made
green by eventlet as in the bench.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, make_url, select, text
from sqlalchemy.orm import Session

from bench.reports_data import History
from bench.reports_seed import EventLogs, assign_segments, loaded, seed_events
from crm_common import migrations
from crm_common.db import lock_number, make_engine
from crm_common.envelope import utcnow
from crm_common.inbox import apply_once
from services.reports.models import AppliedEvent, Base

ROOT = Path(__file__).resolve().parent.parent

ADMIN_URL = os.environ.get(
    "CRM_BENCH_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
TEMPLATE_PREFIX = "crm_bench_reports_seed_"
COPY_PREFIX = "crm_bench_reports_run_"
# What the seeder is checked against the effect functions on, every time it seeds.
SAMPLE = {"customers": 300, "deals": 300, "interactions": 600, "tickets": 100}
# Code whose change makes another data set: the reports service, the shared plumbing it
# stands on, and the bench's own generator, seeder and this module.
FINGERPRINTED = (
    "services/reports",
    "crm_common",
    "bench/reports_data.py",
    "bench/reports_seed.py",
    "bench/reports_dataset.py",
)
# Tables the events fill; the others (outbox, cursors) stay empty, segments are computed.
NOT_COMPARED_TABLES = {"outbox", "producer_cursors", "customer_segments", "alembic_version"}
NOT_COMPARED_COLUMNS = {"applied_at"}


def database_url(name):
    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def admin():
    return create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")


def template_name(sizes, seed):
    """crm_bench_reports_seed_<sizes>_<code>: one data set is kept for each size, made
    again when the code its rows come from changes."""
    size_key = hashlib.sha256(json.dumps([sizes, seed], sort_keys=True).encode())
    code_key = hashlib.sha256()
    for place in FINGERPRINTED:
        path = ROOT / place
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            code_key.update(file.relative_to(ROOT).as_posix().encode())
            code_key.update(file.read_bytes())
    return f"{TEMPLATE_PREFIX}{size_key.hexdigest()[:8]}_{code_key.hexdigest()[:12]}"


# The producers whose event logs (outbox tables) hold the data set's events, each in a
# database of its own beside the reports one: `<template>_<producer>`.
PRODUCERS = ("customers", "pipeline", "interactions")


def log_database(database, producer):
    return f"{database}_{producer}"


@contextmanager
def seeded_copy(sizes, seed=11, reseed=False):
    """A private copy of the data set: yields ({service: its database URL}, what seeding
    it took), the reports database and the producers' ones with their event logs;
    dropped after."""
    arguments = [f"--{kind}={count}" for kind, count in sizes.items()]
    arguments += [f"--seed={seed}"] + (["--reseed"] if reseed else [])
    found = subprocess.run(
        [sys.executable, "-m", "bench.reports_dataset", *arguments],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    seeding = json.loads(found.stdout.splitlines()[-1])
    engine = admin()
    copy = f"{COPY_PREFIX}{uuid.uuid4().hex[:8]}"
    copies = {"reports": (copy, seeding["template"])}
    for producer in PRODUCERS:
        copies[producer] = (
            log_database(copy, producer),
            log_database(seeding["template"], producer),
        )
    try:
        started = time.perf_counter()
        try:
            for name, template in copies.values():
                execute(engine, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            seeding["copy_seconds"] = time.perf_counter() - started
            yield {service: database_url(name) for service, (name, _) in copies.items()}, seeding
        finally:
            drop_data_set(engine, copy)
    finally:
        engine.dispose()


def ensure_template(sizes, seed=11, reseed=False, progress=print):
    """The name of the seeded database for `sizes` and what seeding it took, seeding it
    unless it is there already (or `reseed`).

    It stays behind as a PostgreSQL template named for the sizes and the code it
    came from, so the next run copies it in seconds. Two runs that want it at once
    take turns: the second waits for the first's seeding, then reuses it.
    """
    template = template_name(sizes, seed)
    engine = admin()
    try:
        with engine.connect() as guard:
            key = {"key": lock_number(template)}
            guard.execute(text("SELECT pg_advisory_lock(:key)"), key)
            try:
                seeding = None if reseed else stored_seeding(engine, template)
                if seeding is None:
                    # Whatever a run cut off while seeding left (no comment yet), or the
                    # data set --reseed replaces.
                    drop_data_set(engine, template)
                    seeding = make_template(engine, template, sizes, seed, progress)
                else:
                    progress(
                        f"reports data set: reusing {template}, seeded {seeding['seeded_at']} "
                        f"in {seeding['seconds']:.0f} s (--reseed to seed again)"
                    )
            finally:
                guard.execute(text("SELECT pg_advisory_unlock(:key)"), key)
    finally:
        engine.dispose()
    return {"template": template, **seeding}


def drop_data_set(engine, name):
    """Drop the data set `name` (or its copy): its reports database and its producers'."""
    for each in [name] + [log_database(name, producer) for producer in PRODUCERS]:
        execute(engine, f'DROP DATABASE IF EXISTS "{each}" WITH (FORCE)')


def execute(engine, statement, **params):
    with engine.connect() as connection:
        result = connection.execute(text(statement), params)
        return result.all() if result.returns_rows else []


def stored_seeding(engine, template):
    """What seeding `template` took, from its comment; None if it is missing or unfinished."""
    rows = execute(
        engine,
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :name",
        name=template,
    )
    if not rows or not rows[0][0]:
        return None
    return json.loads(rows[0][0])


def make_template(engine, template, sizes, seed, progress):
    # The same sizes from older code would only fill the disk. Only those finished (with
    # their comment) a day ago or more go: a newer one may be another checkout's, in use.
    for (name,) in execute(
        engine,
        "SELECT datname FROM pg_database WHERE datname LIKE :prefix "
        "AND (shobj_description(oid, 'pg_database')::json->>'seeded_at')::timestamptz "
        "< now() - interval '1 day'",
        prefix=template.rsplit("_", 1)[0] + "_%",
    ):
        base = name
        for producer in PRODUCERS:
            base = base.removesuffix(f"_{producer}")
        drop_data_set(engine, base)
    progress("reports data set: checking the seeder against the effect functions on a sample")
    effects_rate = check_against_effects(engine, seed)
    progress(f"reports data set: seeding {template} and the producers' event logs")
    engines = {}
    for service, name in [("reports", template)] + [
        (producer, log_database(template, producer)) for producer in PRODUCERS
    ]:
        execute(engine, f'CREATE DATABASE "{name}"')
        migrations.upgrade(service, database_url(name))
        engines[service] = make_engine(database_url(name))
        if service != "reports":
            # The pipeline's migration logs its default pipeline's creation: the data set's
            # logs hold the data set's events only, so that a rebuild ends where it began.
            with engines[service].begin() as connection:
                connection.execute(text("TRUNCATE outbox RESTART IDENTITY"))
    target = engines["reports"]
    now = utcnow()
    logs = EventLogs({producer: engines[producer] for producer in PRODUCERS})
    try:
        started = time.perf_counter()
        counts, seconds = seed_events(
            target, History(now, seed).streams(sizes), progress, logs=logs
        )
        with Session(target) as session:
            logs.close(session)
        seconds["segments"] = assign_segments(target, now)
        progress(f"  segments assigned in {seconds['segments']:.0f} s")
        for each in engines.values():
            with each.connect() as connection:
                connection.execution_options(isolation_level="AUTOCOMMIT").execute(
                    text("VACUUM ANALYZE")
                )
        elapsed = time.perf_counter() - started
    finally:
        for each in engines.values():
            each.dispose()
    seeding = {
        "seeded_at": now.isoformat(timespec="seconds"),
        "sizes": sizes,
        "events": counts,
        "seconds": elapsed,
        "seconds_by_kind": seconds,
        "effect_functions_events_per_s": effects_rate,
    }
    comment = json.dumps(seeding).replace("'", "''")
    execute(engine, f"COMMENT ON DATABASE \"{template}\" IS '{comment}'")
    progress(f"reports data set: {sum(counts.values()):,} events seeded in {elapsed:.0f} s")
    return seeding


def check_against_effects(engine, seed):
    """Apply a sample with the service's effect functions and with the seeder, each into a
    scratch database, and stop unless every view table comes out the same. Answers the
    effect functions' rate (events/s, a few thousand a transaction)."""
    names = [f"{COPY_PREFIX}check_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    engines = []
    try:
        for name in names:
            execute(engine, f'CREATE DATABASE "{name}"')
            migrations.upgrade("reports", database_url(name))
            engines.append(make_engine(database_url(name)))
        sample = {
            kind: list(stream) for kind, stream in History(utcnow(), seed).streams(SAMPLE).items()
        }
        rate = apply_with_effects(engines[0], sample)
        seed_events(engines[1], sample, progress=lambda line: None)
        differing = compare(*engines)
    finally:
        for target in engines:
            target.dispose()
        for name in names:
            execute(engine, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if differing:
        raise SystemExit(
            "bench: the seeder and the reports service's effect functions disagree on "
            f"{', '.join(differing)}: update bench/reports_seed.py to match the service"
        )
    return rate


def apply_with_effects(engine, streams):
    """Apply `streams` as the service's inbox does, one transaction per event; answers the
    rate (events/s)."""
    events, started = 0, time.perf_counter()
    with Session(engine) as session:
        for stream in streams.values():
            for item in stream:
                for body in item if isinstance(item, list) else [item]:
                    effect, envelope = loaded(body)
                    apply_once(session, AppliedEvent, envelope, effect)
                    events += 1
    return events / (time.perf_counter() - started)


def table_rows(session, table):
    columns = [column for column in table.columns if column.name not in NOT_COMPARED_COLUMNS]
    primary = list(table.primary_key.columns)
    return session.execute(select(*columns).order_by(*primary)).all()


def view_tables():
    return [table for table in Base.metadata.sorted_tables if table.name not in NOT_COMPARED_TABLES]


def compare(left_engine, right_engine):
    """Names of the view tables whose rows differ between two databases."""
    differing = []
    with Session(left_engine) as left, Session(right_engine) as right:
        for table in view_tables():
            if table_rows(left, table) != table_rows(right, table):
                differing.append(table.name)
    return differing


def main(argv=None):
    parser = argparse.ArgumentParser(description="Make the reports benchmark's data set.")
    for kind in SAMPLE:
        parser.add_argument(f"--{kind}", type=int, required=True)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--reseed", action="store_true")
    args = parser.parse_args(argv)
    sizes = {kind: getattr(args, kind) for kind in SAMPLE}
    seeding = ensure_template(
        sizes, args.seed, args.reseed, progress=lambda line: print(line, file=sys.stderr)
    )
    print(json.dumps(seeding))
    return 0


if __name__ == "__main__":
    sys.exit(main())
