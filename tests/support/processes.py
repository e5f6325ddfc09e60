"""The system as `crm run NAME` processes, for tests that kill, stop and restart its parts.

Each process is a real one, started as `make run` starts it, so a test can
SIGKILL it (no `finally`, no shutdown hook runs) and start it again on the
same databases and queues. `close()` kills every process still running; a
fixture calls it in its teardown, so a failing test leaves none behind.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

import requests
from nameko.standalone.rpc import ClusterRpcProxy

from crm_common.config import SERVICES
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
STOP_SECONDS = 15
START_SECONDS = 60


def process_env(config, **overrides):
    """The environment of `crm run` for `config` (a crm_config): its CRM_ settings, no others."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CRM_")}
    env.update({key: str(value) for key, value in config.items() if key.startswith("CRM_")})
    env.update({key: str(value) for key, value in overrides.items()})
    return env


class Processes:
    """Named `crm run` processes sharing `env`; each one's output goes to `log_dir/NAME.log`,
    or nowhere without a `log_dir`."""

    def __init__(self, env, log_dir=None):
        self.env = env
        self.log_dir = Path(log_dir) if log_dir else None
        self.running = {}

    def start(self, name, module=None, **overrides):
        """Start `crm run NAME` (the gateway or a service), or `python -m module` under that
        name; `overrides` change its environment."""
        assert name not in self.running, f"{name} is running already"
        env = dict(self.env, **{key: str(value) for key, value in overrides.items()})
        command = ["-m", module] if module else ["-m", "crm_common.cli", "run", name]
        log = open(self.log_path(name), "a") if self.log_dir else subprocess.DEVNULL
        try:
            self.running[name] = subprocess.Popen(
                [sys.executable, *command],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        finally:
            if self.log_dir:
                log.close()

    def pids(self):
        return {name: process.pid for name, process in self.running.items()}

    def kill(self, name):
        """SIGKILL: the process dies wherever it is, as in a power cut or an OOM kill."""
        process = self.running.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait()

    def stop(self, name, seconds=STOP_SECONDS):
        """SIGTERM, as `crm up` stops it; a process still running after `seconds` is killed
        and the stop fails."""
        process = self.running.pop(name)
        process.terminate()
        try:
            process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise AssertionError(f"{name} did not stop within {seconds} s") from None

    def close(self):
        """Kill whatever still runs (teardown: nothing is left behind, even on failure)."""
        for name in list(self.running):
            self.kill(name)

    def alive(self, name):
        """Fails with the process's log if it exited."""
        process = self.running[name]
        code = process.poll()
        assert code is None, f"{name} exited with {code}:\n{self.log(name)[-3000:]}"
        return True

    def log_path(self, name):
        return self.log_dir / f"{name}.log"

    def log(self, name):
        path = self.log_path(name) if self.log_dir else None
        return path.read_text() if path and path.exists() else ""

    def start_system(self, **overrides):
        """Every service and the gateway, as `crm up` starts them; answers the gateway's URL
        once /ready says the system is up."""
        for name in (*SERVICES, "gateway"):
            self.start(name, **overrides)
        base_url = f"http://{self.env['CRM_GATEWAY_ADDRESS']}"
        self.wait_ready(base_url)
        return base_url

    def wait_answering(self, config, *names, timeout=START_SECONDS):
        """Wait until each of the services `names` answers its `health` RPC."""
        with ClusterRpcProxy(config, timeout=5) as rpc:
            for name in names:

                def answers(name=name):
                    self.alive(name)
                    try:
                        return getattr(rpc, name).health()["status"] == "ok"
                    except Exception:  # not consuming yet, or its database is not there yet
                        return False

                wait_for(answers, timeout=timeout, interval=0.25, message=f"{name} to answer")

    def wait_ready(self, base_url, timeout=START_SECONDS):
        """Wait until the gateway's /ready says the broker, Redis and every service answer."""

        def ready():
            self.alive("gateway")
            try:
                return requests.get(f"{base_url}/ready", timeout=5).status_code == 200
            except requests.RequestException:
                return False

        wait_for(ready, timeout=timeout, interval=0.25, message="the gateway to be ready")
