"""`crm`: run the system, one service, or its migrations.

    crm up                 every service and the gateway, as `make run` does
    crm run NAME           one service (migrates its database first) or the gateway
    crm migrate [NAME...]  bring databases to the newest schema
    crm revision NAME MSG  write a new migration from NAME's models (autogenerate)
    crm rebuild-reports    rebuild every report view from the producers' event logs
    crm dead-letters ...   list, show, replay, discard events a service could not apply
    crm asyncapi [--check] write the event catalog (docs/asyncapi.yaml) from the schemas
    crm demo               load a demo data set into a running system through its HTTP API

Containers in docker-compose run `crm run NAME`; `crm up` starts the same
commands as child processes, so the local run and the compose run match.
"""

import argparse
import importlib
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from crm_common import dead_letter_cli
from crm_common.config import (
    PROCESSES,
    SERVICES,
    ConfigError,
    db_url_key,
    for_process,
    from_env,
    metrics_port_of,
)

SERVICE_CLASSES = {
    "customers": "services.customers.service:CustomersService",
    "pipeline": "services.pipeline.service:PipelineService",
    "interactions": "services.interactions.service:InteractionsService",
    "reports": "services.reports.service:ReportsService",
    "gateway": "gateway.service:GatewayService",
}
BROKER_WAIT_SECONDS = 60
READY_WAIT_SECONDS = 90
STOP_WAIT_SECONDS = 15


class StartupError(RuntimeError):
    """Something outside the CRM is missing; the message says what to do."""


def main(argv=None):
    parser = argparse.ArgumentParser(prog="crm", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start every service and the gateway")
    run_parser = commands.add_parser("run", help="start one service or the gateway")
    run_parser.add_argument("name", choices=sorted(SERVICE_CLASSES))
    migrate_parser = commands.add_parser("migrate", help="upgrade databases to the newest schema")
    migrate_parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(SERVICES))
    revision_parser = commands.add_parser(
        "revision", help="write a migration from a service's models"
    )
    revision_parser.add_argument("name", choices=SERVICES)
    revision_parser.add_argument("message")
    rebuild_parser = commands.add_parser(
        "rebuild-reports", help="rebuild the report views from the event logs, and wait"
    )
    rebuild_parser.add_argument(
        "--no-wait", action="store_true", help="ask for the rebuild and return at once"
    )
    dead_letter_cli.add_parser(commands)
    asyncapi_parser = commands.add_parser(
        "asyncapi", help="write the AsyncAPI event catalog from the event schemas"
    )
    asyncapi_parser.add_argument("--output", default=None, help="default: docs/asyncapi.yaml")
    asyncapi_parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 when the file is not current"
    )
    demo_parser = commands.add_parser(
        "demo", help="load a demo data set into a running system through its HTTP API"
    )
    demo_parser.add_argument(
        "--url", help="the gateway (default: http://$CRM_GATEWAY_ADDRESS, as `make run` serves it)"
    )
    demo_parser.add_argument(
        "--token", help="an admin token (default: $CRM_ADMIN_TOKEN, else $CRM_DATA_DIR/admin-token)"
    )
    demo_parser.add_argument("--customers", type=int, default=300, help="how many (default 300)")
    demo_parser.add_argument("--seed", type=int, default=1, help="another seed, other people")
    demo_parser.add_argument("--workers", type=int, default=4, help="customers told at once")
    args = parser.parse_args(argv)
    if args.command == "demo" and not (1 <= args.customers <= 1600 and 1 <= args.workers <= 32):
        parser.error("--customers takes 1 to 1600 (the names run out), --workers 1 to 32")
    unknown = set(getattr(args, "names", ())) - set(SERVICES)
    if unknown:
        parser.error(f"unknown service(s): {', '.join(sorted(unknown))}")
    try:
        if args.command == "run":
            return run(args.name)
        if args.command == "asyncapi":
            return write_asyncapi(args.output, check=args.check)
        config = from_env()
        if args.command == "migrate":
            return migrate(config, args.names or SERVICES)
        if args.command == "revision":
            return revision(args.name, args.message)
        if args.command == "demo":
            return demo(config, args)
        if args.command == "rebuild-reports":
            return rebuild_reports(config, wait=not args.no_wait)
        if args.command == "dead-letters":
            return dead_letter_cli.run(config, args)
        return up(config)
    except (StartupError, ConfigError) as exc:
        print(f"crm: {exc}", file=sys.stderr)
        return 2


def run(name):
    # Green sockets and a cooperative PostgreSQL driver before anything connects.
    import eventlet

    eventlet.monkey_patch()
    from psycogreen.eventlet import patch_psycopg

    patch_psycopg()

    from nameko.cli.run import run as run_services

    from crm_common import logs, migrations

    config = from_env()
    logs.configure(name, config["CRM_LOG_LEVEL"])
    wait_for_broker(config["CRM_AMQP_URI"], BROKER_WAIT_SECONDS)
    if name in SERVICES:
        migrations.upgrade(name, config[db_url_key(name)])
    module_name, class_name = SERVICE_CLASSES[name].split(":")
    service_cls = getattr(importlib.import_module(module_name), class_name)
    run_services([service_cls], for_process(config, name))
    return 0


def migrate(config, names):
    from crm_common import migrations

    for name in names:
        migrations.upgrade(name, config[db_url_key(name)])
        print(f"crm: {name} database is at the newest schema")
    return 0


def revision(name, message):
    """Autogenerate against a scratch database at head, so only the new change is written."""
    import tempfile

    from alembic import command

    from crm_common import migrations

    versions = migrations.SERVICES_DIR / name / "migrations" / "versions"
    number = f"{len(list(versions.glob('[0-9][0-9][0-9][0-9]_*.py'))) + 1:04d}"
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{scratch}/{name}.db"
        migrations.upgrade(name, url)
        config = migrations.alembic_config(name, url)
        config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
        command.revision(config, message, autogenerate=True, rev_id=number)
    return 0


def rebuild_reports(config, wait=True, poll_seconds=1.0):
    """Ask the running reports service for a rebuild; follow it to the end unless told not to."""
    from nameko.exceptions import RpcTimeout, UnknownService
    from nameko.standalone.rpc import ClusterRpcProxy

    try:
        with ClusterRpcProxy(for_process(config, "rebuild"), timeout=30) as cluster:
            answer = cluster.reports.request_rebuild("crm rebuild-reports")
            rebuild = answer["rebuild"]
            print(
                f"crm: rebuild {rebuild['rebuild_id']} "
                f"{'requested' if answer['created'] else 'already under way'}"
            )
            while wait and rebuild["status"] != "done":
                time.sleep(poll_seconds)
                rebuild = cluster.reports.rebuild_status()
                print(
                    f"crm: {rebuild['status']}: {rebuild['events_read']} events read, "
                    f"{rebuild['events_applied']} applied"
                )
    except (UnknownService, RpcTimeout, OSError) as exc:
        raise StartupError(f"the reports service does not answer ({exc}); is it running?") from None
    return 0


def demo(config, args):
    from crm_common.demo import DemoError, load

    url = args.url or f"http://{config['CRM_GATEWAY_ADDRESS']}"
    token = args.token or config["CRM_ADMIN_TOKEN"]
    if not token:
        path = Path(config["CRM_DATA_DIR"]) / "admin-token"
        if not path.exists():
            raise StartupError(
                f"no admin token: give --token, set CRM_ADMIN_TOKEN, or `make run` first ({path})"
            )
        token = path.read_text().strip()
    try:
        load(url, token, customers=args.customers, seed=args.seed, workers=args.workers)
    except DemoError as exc:
        raise StartupError(str(exc)) from None
    return 0


def write_asyncapi(output, check=False):
    from crm_common import asyncapi

    path = output or asyncapi.DOCUMENT_PATH
    if check:
        if asyncapi.is_current(path):
            print(f"crm: {path} is current")
            return 0
        print(f"crm: {path} differs from the event schemas; run `crm asyncapi`", file=sys.stderr)
        return 1
    print(f"crm: wrote {asyncapi.write(path)}")
    return 0


def up(config):
    data_dir = Path(config["CRM_DATA_DIR"]).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    wait_for_broker(config["CRM_AMQP_URI"], 0)
    check_redis(config["CRM_REDIS_URL"])
    env = dict(os.environ, CRM_DATA_DIR=str(data_dir))
    env["CRM_ADMIN_TOKEN"] = admin_token(config, data_dir)

    children = {}
    # SIGTERM stops everything as Ctrl-C does, at any moment: also while the system
    # starts (up to READY_WAIT_SECONDS), when a supervisor would soon kill this
    # process and leave its children running.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        for name in PROCESSES:
            # One host, so each process serves its metrics on a port of its own.
            child_env = dict(env, CRM_METRICS_PORT=str(metrics_port_of(config, name)))
            children[name] = subprocess.Popen(
                [sys.executable, "-m", "crm_common.cli", "run", name], env=child_env
            )
        url = f"http://{config['CRM_GATEWAY_ADDRESS']}"
        wait_until_ready(url, children)
        print(
            f"crm: up. Gateway on {url} (GET /ready, /api/v1/...). Ctrl-C stops everything.",
            flush=True,
        )
        if config["CRM_METRICS_PORT"]:
            ports = ", ".join(f"{name} {metrics_port_of(config, name)}" for name in PROCESSES)
            print(
                f"crm: metrics on http://{config['CRM_METRICS_HOST']}:PORT/metrics: {ports}",
                flush=True,
            )
        while True:
            for name, child in children.items():
                if child.poll() is not None:
                    raise StartupError(
                        f"{name} exited with code {child.returncode}; stopping the rest"
                    )
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        # Another SIGTERM must not cut the stopping short.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop_all(children)
    return 0


def admin_token(config, data_dir):
    """CRM_ADMIN_TOKEN, or a token kept in the data directory for local runs."""
    if config["CRM_ADMIN_TOKEN"]:
        print("crm: admin token taken from CRM_ADMIN_TOKEN", flush=True)
        return config["CRM_ADMIN_TOKEN"]
    path = data_dir / "admin-token"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32) + "\n")
        path.chmod(0o600)
        print(f"crm: generated an admin token in {path}", flush=True)
    print(f"crm: admin token taken from {path} (set CRM_ADMIN_TOKEN to use your own)", flush=True)
    return path.read_text().strip()


# Compose reads its whole file, whose gateway requires an admin token: without one in
# the environment or `.env`, starting even these two fails.
START_WITH_COMPOSE = "`CRM_ADMIN_TOKEN=<16+ characters> docker compose up -d rabbitmq redis`"


def wait_for_broker(amqp_uri, seconds):
    from kombu import Connection

    deadline = time.monotonic() + seconds
    while True:
        try:
            with Connection(amqp_uri, connect_timeout=3) as connection:
                connection.ensure_connection(max_retries=1)
            return
        except Exception as exc:
            if time.monotonic() >= deadline:
                raise StartupError(
                    f"cannot reach RabbitMQ at {redact(amqp_uri)} ({exc}). Start it (your "
                    f"system's rabbitmq-server, or {START_WITH_COMPOSE}) or set CRM_AMQP_URI."
                ) from None
            time.sleep(1)


def check_redis(redis_url):
    import redis

    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        raise StartupError(
            f"cannot reach Redis at {redact(redis_url)} ({exc}). Start it (your system's "
            f"redis-server, or {START_WITH_COMPOSE}) or set CRM_REDIS_URL."
        ) from None


def wait_until_ready(url, children):
    deadline = time.monotonic() + READY_WAIT_SECONDS
    while time.monotonic() < deadline:
        for name, child in children.items():
            if child.poll() is not None:
                raise StartupError(f"{name} exited with code {child.returncode} while starting")
        try:
            with urllib.request.urlopen(f"{url}/ready", timeout=3) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise StartupError(f"the system was not ready within {READY_WAIT_SECONDS} s (see {url}/ready)")


def stop_all(children):
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def redact(url):
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


if __name__ == "__main__":
    sys.exit(main())
