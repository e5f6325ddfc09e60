"""The gateway benchmark's baseline: a bare Nameko `@http` endpoint, served as the gateway is.

    python -m bench.bare_http     (with the environment a `crm run gateway` would get)

One endpoint, `GET /bare`, answers a small constant JSON body: no token, no
rate limit, no RPC. It runs in a process of its own with the same green
sockets, the same config and the same worker limit as the gateway, on
CRM_GATEWAY_ADDRESS, so the gap between the two is what the gateway adds.
"""

import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import json  # noqa: E402

from nameko.cli.run import run as run_services  # noqa: E402
from nameko.web.handlers import http  # noqa: E402
from werkzeug.wrappers import Response  # noqa: E402

from crm_common import logs  # noqa: E402
from crm_common.config import for_process, from_env  # noqa: E402

# About the size of a small report's answer.
BODY = json.dumps(
    {"status": "ok", "items": [{"stage": f"stage-{n}", "count": n} for n in range(8)]}
)


class BareService:
    name = "bench_bare"

    @http("GET", "/bare")
    def bare(self, request):
        return Response(BODY, mimetype="application/json")


def main():
    config = from_env()
    logs.configure("bench_bare", config["CRM_LOG_LEVEL"])
    run_services([BareService], for_process(config, "gateway"))


if __name__ == "__main__":
    main()
