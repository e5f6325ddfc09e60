"""Make sure what the tests talk to is there, and say clearly what is not.

The suite uses the real RabbitMQ (each test in its own throwaway vhost,
created through the management API), PostgreSQL (a fresh database per test)
and Redis. On a machine where RabbitMQ runs without its management plugin,
this enables it (that needs the rabbitmq-plugins command and the rights to
use it).
"""

import os
import shutil
import subprocess
import sys
import time

import redis
import requests
from kombu import Connection
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from tests.support.settings import AMQP_URI, PG_URL, RABBIT_API_URI, REDIS_URL

WAIT_SECONDS = 60


def main():
    problems = [
        problem for check in (check_broker, check_postgres, check_redis) if (problem := check())
    ]
    for problem in problems:
        print(f"tests need: {problem}", file=sys.stderr)
    return 1 if problems else 0


def check_broker():
    try:
        with Connection(AMQP_URI, connect_timeout=5) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:
        return f"RabbitMQ at {AMQP_URI} ({exc}); start it or set CRM_TEST_AMQP_URI"
    if management_api_answers():
        return None
    if shutil.which("rabbitmq-plugins") is None:
        return (
            f"RabbitMQ's management API at {RABBIT_API_URI}; enable the rabbitmq_management plugin"
        )
    print("enabling RabbitMQ's management plugin", flush=True)
    enabled = subprocess.run(
        ["rabbitmq-plugins", "enable", "rabbitmq_management"], capture_output=True, text=True
    )
    if enabled.returncode != 0:
        return f"the rabbitmq_management plugin (rabbitmq-plugins said: {enabled.stderr.strip()})"
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if management_api_answers():
            return None
        time.sleep(1)
    return f"RabbitMQ's management API at {RABBIT_API_URI} did not come up"


def management_api_answers():
    try:
        return requests.get(f"{RABBIT_API_URI}/api/overview", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def check_postgres():
    engine = create_engine(PG_URL, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return f"PostgreSQL at {PG_URL} ({exc.orig or exc}); start it or set CRM_TEST_PG_URL"
    finally:
        engine.dispose()
    return None


def check_redis():
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5).ping()
    except redis.RedisError as exc:
        return f"Redis at {REDIS_URL} ({exc}); start it or set CRM_TEST_REDIS_URL"
    return None


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
