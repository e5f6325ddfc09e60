"""The demo loader's HTTP client: what it retries, and what it refuses to send twice."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from crm_common.demo import Api, DemoError


class Scripted:
    """A server answering each request with the next of `answers`: (status, headers, body)."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.seen = []
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def do_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                scripted.seen.append(
                    (self.command, self.path, self.headers.get("Idempotency-Key"), body)
                )
                status, headers, answer = scripted.answers.pop(0)
                payload = json.dumps(answer).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_DELETE = do_any

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted(monkeypatch):
    monkeypatch.setattr("crm_common.demo.time.sleep", lambda seconds: None)
    servers = []

    def make(*answers):
        servers.append(Scripted(answers))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def unavailable():
    return 503, {}, {"error": {"code": "SERVICE_UNAVAILABLE", "message": "busy"}}


def test_a_keyed_post_is_sent_again_with_its_key_after_a_503_and_a_429(scripted):
    server = scripted(
        unavailable(),
        (429, {"Retry-After": "1"}, {"error": {"code": "RATE_LIMITED", "message": "slow"}}),
        (201, {}, {"id": "c-1"}),
    )
    api = Api(server.url, "token")
    assert api.call("POST", "/api/v1/customers", {"name": "Ada"}, key="k-1") == (
        201,
        {"id": "c-1"},
    )
    assert [(method, key) for method, _, key, _ in server.seen] == [("POST", "k-1")] * 3
    assert {body for *_, body in server.seen} == {b'{"name": "Ada"}'}


def test_a_post_without_a_key_is_never_sent_twice(scripted):
    server = scripted(unavailable(), (201, {}, {"id": "t-1"}))
    with pytest.raises(DemoError, match="answered 503"):
        Api(server.url, "token").call("POST", "/api/v1/auth/tokens", {"role": "sales"})
    assert len(server.seen) == 1


def test_a_patch_is_sent_again_after_a_503(scripted):
    server = scripted(unavailable(), (200, {}, {"id": "c-1", "status": "customer"}))
    status, _ = Api(server.url, "token").call("PATCH", "/api/v1/customers/c-1", {"x": 1})
    assert status == 200 and len(server.seen) == 2


def test_an_answer_it_did_not_expect_says_what_answered_what(scripted):
    server = scripted((422, {}, {"error": {"code": "INVALID_TRANSITION", "message": "closed"}}))
    with pytest.raises(DemoError, match=r"POST /api/v1/deals/d-1/won answered 422: .*closed"):
        Api(server.url, "token").call("POST", "/api/v1/deals/d-1/won", {}, key="k")


def test_it_gives_up_after_its_tries(scripted):
    server = scripted(*[unavailable()] * 6)
    with pytest.raises(DemoError, match="503"):
        Api(server.url, "token").call("GET", "/ready", ok=(200,))
    assert len(server.seen) == 6
