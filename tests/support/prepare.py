"""Make sure what the tests talk to is there, and say clearly what is not.

The suite uses the real RabbitMQ (each test in its own throwaway vhost,
created through the management API), PostgreSQL (a fresh database per test)
and Redis. On a machine where RabbitMQ runs without its management plugin,
this enables it (that needs the rabbitmq-plugins command and the rights to
use it). The dashboard's browser test drives Debian's Chromium: when it is
missing, this installs it with apt-get (as root, without asking anything);
where that cannot be done, the browser test is skipped and this says why.
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

from tests.support.browser import chromium_path
from tests.support.settings import AMQP_URI, PG_URL, RABBIT_API_URI, REDIS_URL

WAIT_SECONDS = 60
APT_SECONDS = 900


def main():
    problems = [
        problem for check in (check_broker, check_postgres, check_redis) if (problem := check())
    ]
    for problem in problems:
        print(f"tests need: {problem}", file=sys.stderr)
    missing_browser = check_browser()
    if missing_browser:
        print(f"the dashboard's browser test will be skipped: {missing_browser}", file=sys.stderr)
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


def check_browser():
    """Install Debian's chromium when it is missing and this may; None once it is there."""
    if chromium_path():
        return None
    print("installing Debian's chromium for the dashboard's browser test", flush=True)
    return install_debian("chromium", chromium_path, "CRM_TEST_CHROMIUM")


def install_debian(package, found, setting=None):
    """Install a Debian `package` (as root, without asking anything) when `found()` says
    it is missing; None once it is there, else what stands in the way."""
    if found():
        return None
    instead = f"; or set {setting}" if setting else ""
    if shutil.which("apt-get") is None:
        return f"no {package}, and no apt-get to install it with{instead}"
    if os.geteuid() != 0:
        return f"no {package}; install it (apt-get install {package}){instead}"
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
    failure = apt(install)
    if failure:  # the package lists may be missing or stale: refresh them once
        failure = apt(["apt-get", "update", "-q"]) or apt(install)
    if failure:
        return f"apt-get could not install {package} ({failure})"
    return None if found() else f"apt-get installed {package}, but it is not on PATH"


def apt(command):
    """Run an apt-get command with no one to answer it; its complaint, or None."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Another apt run may hold the lock for a while: wait for it rather than fail.
    command = [command[0], "-o", "DPkg::Lock::Timeout=120", *command[1:]]
    try:
        done = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=env,
            timeout=APT_SECONDS,
        )
    except subprocess.TimeoutExpired:
        return f"{' '.join(command)} took more than {APT_SECONDS} s"
    if done.returncode != 0:
        return (done.stderr.strip() or done.stdout.strip())[-500:]
    return None


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
