"""A Redis server of a test's own, on a free port, that the test may stop and start.

Configured as docker-compose.yml configures the system's Redis (append-only
file on), so a stop and start here keeps what production keeps across a
Redis restart: tokens, idempotency keys and their answers.
"""

import os
import shutil
import subprocess
import tempfile

import redis

from tests.support.waiting import free_port, wait_for

REDIS_SERVER = os.environ.get("CRM_TEST_REDIS_SERVER") or shutil.which("redis-server")
STOP_SECONDS = 15


class PrivateRedis:
    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="crm-test-redis-")
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", self.dir,
                "--appendonly", "yes",
                "--appendfsync", "always",
                "--save", "",
            ],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url, socket_timeout=1)
        try:
            wait_for(lambda: self._answers(client), timeout=15, message="the private Redis")
        finally:
            client.close()

    def _answers(self, client):
        assert self.process.poll() is None, "the private Redis exited"
        try:
            return client.ping()
        except redis.RedisError:
            return False

    def stop(self):
        """SIGTERM: Redis finishes its append-only file and exits, as `systemctl stop` does."""
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def destroy(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
