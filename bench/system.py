"""The whole system for a bench: every service and the gateway as `crm run` processes, on
PostgreSQL databases of their own (as docker compose runs them), in a private vhost
and Redis key prefix, all removed afterwards."""

import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import dataclass

import redis
import requests

from bench.reports_dataset import admin, database_url, execute
from bench.support import BENCH_TOKEN, START_SECONDS, Services, Vhost, bench_env
from crm_common.config import from_env
from tests.support.waiting import wait_for

SERVICES = ("customers", "pipeline", "interactions", "reports")


@dataclass
class System:
    vhost: Vhost
    config: dict
    services: Services
    base_url: str
    db_urls: dict

    def http(self):
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {BENCH_TOKEN}"
        return session


@contextmanager
def scratch_databases(names):
    """An empty PostgreSQL database for each of `names`: {name: url}."""
    engine = admin()
    databases = {name: f"crm_bench_{name}_{uuid.uuid4().hex[:8]}" for name in names}
    try:
        for database in databases.values():
            execute(engine, f'CREATE DATABASE "{database}"')
        yield {name: database_url(database) for name, database in databases.items()}
    finally:
        for database in databases.values():
            execute(engine, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        engine.dispose()


def ready(base_url):
    try:
        return requests.get(f"{base_url}/ready", timeout=5).status_code == 200
    except requests.RequestException:
        return False


@contextmanager
def running_system(logs, **settings):
    """Every service and the gateway, ready (no rate limit, as bench_env sets); their
    logs in bench/results/<logs>-logs/."""
    with (
        Vhost() as vhost,
        scratch_databases(SERVICES) as urls,
        tempfile.TemporaryDirectory() as data_dir,
    ):
        prefix = f"crm-{vhost.name}"
        env = bench_env(
            vhost,
            data_dir,
            CRM_REDIS_PREFIX=prefix,
            **{f"CRM_{name.upper()}_DB_URL": url for name, url in urls.items()},
            **settings,
        )
        config = from_env(env)
        services = Services(env, logs)
        base_url = f"http://{config['CRM_GATEWAY_ADDRESS']}"
        try:
            for name in (*SERVICES, "gateway"):
                services.start(name)
            wait_for(
                lambda: ready(base_url), timeout=START_SECONDS, interval=0.5, message="GET /ready"
            )
            yield System(vhost, config, services, base_url, urls)
        finally:
            services.stop_all()
            forget_keys(config["CRM_REDIS_URL"], prefix)


def forget_keys(redis_url, prefix):
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()
