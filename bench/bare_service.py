"""The smallest Nameko service: one RPC method. What a service process costs before any
of the CRM's code, the baseline of each service's peak memory.

    nameko run bench.bare_service:Bare --broker AMQP_URI
"""

import subprocess
import sys

from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcProxy

from bench.support import ROOT, START_SECONDS, answers
from tests.support.waiting import wait_for

CALLS = 200


class Bare:
    name = "bench_bare"

    @rpc
    def health(self):
        return {"status": "ok"}


def peak_kib(amqp_uri, peaks):
    """Start the bare service in the vhost of `amqp_uri`, call it CALLS times, note its peak
    resident size in `peaks` as `bare_nameko`, and stop it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "nameko", "run", "bench.bare_service:Bare", "--broker", amqp_uri],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with ClusterRpcProxy({"AMQP_URI": amqp_uri}) as cluster:
            wait_for(
                lambda: answers(cluster, Bare.name),
                timeout=START_SECONDS,
                message="the bare service",
            )
            for _ in range(CALLS):
                cluster.bench_bare.health()
        peaks.note("bare_nameko", process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)
