"""HTTP plumbing of the gateway: JSON in, JSON out, one error shape everywhere.

`@api(method, url)` marks a gateway method as an HTTP endpoint. The method
returns `(status, body)` or a body (200), raises `ApiError` for anything a
client should hear about, and never lets an exception reach the client as a
500 with a stack trace: every failure leaves as
`{"error": {"code", "message", "fields"?}}` with the request id attached.
"""

import contextlib
import datetime
import decimal
import functools
import io
import json
import logging
import math
import re
import socket
import time
import uuid
from http import HTTPStatus

import eventlet
from eventlet import wsgi
from marshmallow import ValidationError
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter, Map
from werkzeug.wrappers import Request, Response

from crm_common import logs, metrics
from crm_common.validation import UNSTORABLE, unstorable_path

log = logging.getLogger("gateway.http")

ERROR_CODES = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    408: "REQUEST_TIMEOUT",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    414: "URI_TOO_LONG",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "INVALID_TRANSITION",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
}

REQUEST_ID_HEADER = "X-Request-Id"
# A body must arrive within this many seconds; a client trickling bytes
# would otherwise hold a worker for as long as it likes.
BODY_READ_SECONDS = 30
# Idle keep-alive connections are closed after this many seconds.
SOCKET_TIMEOUT_SECONDS = 60
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# The route label of requests no endpoint matched (404, 405): paths a client makes up
# must not each become a series of their own.
UNMATCHED_ROUTE = "unmatched"
SERVICE_NAME = "gateway"


class ApiError(Exception):
    """An answer other than success, in the API's error shape."""

    def __init__(self, status, message, fields=None, code=None, headers=None, **details):
        super().__init__(message)
        self.status = status
        self.code = code or ERROR_CODES.get(status, "ERROR")
        self.message = message
        self.fields = fields or {}
        self.details = details
        self.headers = headers or {}

    def response(self):
        error = {"code": self.code, "message": self.message}
        if self.fields:
            error["fields"] = self.fields
        error.update(self.details)
        return json_response(self.status, {"error": error}, self.headers)


def json_response(status, body, headers=None):
    if status == 204:
        return Response(status=204, headers=headers)
    return Response(
        json.dumps(body, separators=(",", ":"), allow_nan=False),
        status=status,
        headers=headers,
        mimetype="application/json",
    )


def request_id(request):
    """The caller's X-Request-Id when it is sane, else a new one; same for the whole request."""
    if not hasattr(request, "crm_request_id"):
        given = request.headers.get(REQUEST_ID_HEADER, "")
        request.crm_request_id = given if _CLIENT_REQUEST_ID.match(given) else uuid.uuid4().hex
    return request.crm_request_id


def from_http_exception(exc):
    status = exc.code or 500
    headers = {}
    if status == 405 and exc.valid_methods:
        headers["Allow"] = ", ".join(sorted(exc.valid_methods))
    message = {
        404: "No such endpoint.",
        405: "Method not allowed on this endpoint.",
        413: "Request body is too large.",
    }.get(status, exc.description or exc.name)
    return ApiError(status, message, headers=headers)


def finish(request, response, started):
    response.headers[REQUEST_ID_HEADER] = request_id(request)
    response.headers.update(getattr(request, "crm_headers", {}))
    route = getattr(request, "crm_route", UNMATCHED_ROUTE)
    seconds = time.monotonic() - started
    metrics.HTTP_REQUESTS.labels(
        SERVICE_NAME, request.method, route, str(response.status_code)
    ).inc()
    metrics.HTTP_DURATION.labels(SERVICE_NAME, request.method, route).observe(seconds)
    log.info(
        "%s %s %s",
        request.method,
        request.path,
        response.status_code,
        extra={
            "request_id": request_id(request),
            "route": route,
            "status": response.status_code,
            "duration_ms": round(seconds * 1000, 2),
        },
    )
    return response


class ApiWsgiApp(WsgiApp):
    """Routing failures (unknown path, wrong method) in the API's error shape too."""

    def __call__(self, environ, start_response):
        started = time.monotonic()
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            # eventlet's input decodes chunked bodies and ends where they end;
            # saying so lets Werkzeug read them, within the size limit.
            environ["wsgi.input_terminated"] = True
        request = Request(environ, shallow=True)
        adapter = self.url_map.bind_to_environ(environ)
        try:
            provider, values = adapter.match()
            request.path_values = values
            request.crm_route = provider.url
            response = provider.handle_request(request)
        except HTTPException as exc:
            response = finish(request, from_http_exception(exc).response(), started)
        return response(environ, start_response)


class IdConverter(BaseConverter):
    """`<id:name>` in a route: a record's id, a UUID in any spelling (upper case, braces,
    no hyphens). A word is no id: PATCH /customers/export is a 405, not a customer."""

    regex = r"\{?[0-9A-Fa-f-]+\}?"


class ApiWebServer(WebServer):
    def get_wsgi_app(self):
        return ApiWsgiApp(self)

    def make_url_map(self):
        # Nameko's, with the `id` converter: a map knows its converters before its rules.
        url_map = Map(converters={"id": IdConverter})
        for provider in self._providers:
            rule = provider.get_url_rule()
            rule.endpoint = provider
            url_map.add(rule)
        return url_map

    def get_wsgi_server(self, sock, wsgi_app, **kwargs):
        # Answers leave in more than one write (headers, body); without this,
        # Nagle's algorithm holds the last one for the client's delayed ACK
        # (about 40 ms a response). Accepted sockets inherit the option.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        server = super().get_wsgi_server(sock, wsgi_app, **kwargs)
        server.socket_timeout = SOCKET_TIMEOUT_SECONDS
        return server

    def context_data_from_headers(self, request):
        # Travels with every RPC the request causes, so logs can be joined up.
        return {"request_id": request_id(request)}


def bare_error(status, message):
    """A whole HTTP/1.0 answer in the error shape, for the server to write on its own."""
    body = json.dumps({"error": {"code": ERROR_CODES[status], "message": message}}).encode()
    head = (
        f"HTTP/1.0 {status} {HTTPStatus(status).phrase}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


# eventlet answers a request line longer than its limit itself, before any app sees
# the request (with an empty body): that answer has the API's error shape too.
wsgi.RESPONSE_414 = bare_error(
    414, f"The request line (method, path, query) is longer than {wsgi.MAX_REQUEST_LINE} bytes."
)


class ApiHandler(HttpRequestHandler):
    server = ApiWebServer()

    def check_signature(self, args, kwargs):
        # Nameko checks every request's arguments against the method with
        # inspect.getcallargs (a tenth of a request's time here). An `@api` endpoint
        # takes the request and whatever the route's path holds: it always fits.
        pass

    def response_from_exception(self, exc):
        # Only reached when no worker could run (e.g. the gateway is stopping).
        log.error("request not handled: %s", exc)
        return ApiError(503, "The gateway cannot take requests right now.").response()


def api(method, url, max_body="CRM_MAX_BODY_BYTES", idempotency_key=True, **described):
    """Declare an HTTP endpoint of the gateway (see the module docstring).

    `max_body` names the setting that caps the request body's size. Every
    request passes the service's `serve(request, respond, idempotency_key)`
    first (who is calling, how often, was it answered before), which calls
    `respond()` for the endpoint's own answer. A POST takes an Idempotency-Key
    unless `idempotency_key=False` (its answer must not be kept for replays).
    `described` is what /openapi.json tells of the endpoint beside its method,
    path and docstring: the schemas it reads and answers with (the keywords are
    in gateway/openapi.py).
    """
    keyed = idempotency_key and method == "POST"

    def decorate(fn):
        @functools.wraps(fn)
        def endpoint(self, request, **path_values):
            started = time.monotonic()
            # Every line this request's worker logs carries its id.
            logs.bind(request_id=request_id(request))

            def respond():
                return answer(request, lambda: fn(self, request, **path_values))

            def admit():
                limit_body(request, self.config[max_body])
                return self.serve(request, respond, keyed)

            return finish(request, answer(request, admit), started)

        endpoint.described = described
        endpoint.idempotency_key = keyed
        return ApiHandler.decorator(method, url)(endpoint)

    return decorate


def answer(request, run):
    """What `run()` returns, as a Response; what it raises, as the error it stands for."""
    try:
        return to_response(run())
    except ApiError as exc:
        return exc.response()
    except HTTPException as exc:
        return from_http_exception(exc).response()
    except Exception:
        log.exception("unhandled error", extra={"request_id": request_id(request)})
        return ApiError(500, "Internal error; the request id identifies it in the logs.").response()


def add_headers(request, headers):
    """Headers the answer to `request` carries, whatever it turns out to be."""
    request.crm_headers = {**getattr(request, "crm_headers", {}), **headers}


def to_response(result):
    if isinstance(result, Response):
        return result
    if isinstance(result, tuple):
        status, body, *rest = result
        return json_response(status, body, rest[0] if rest else None)
    return json_response(200, result)


def limit_body(request, max_bytes):
    if request.content_length is not None and request.content_length > max_bytes:
        raise ApiError(413, f"Request body is larger than {max_bytes} bytes.")
    # Bodies without a length (chunked) are checked as they are read.
    request.crm_max_body_bytes = max_bytes


def read_body(request):
    """The whole body; 413 once it grows past the limit, 408 if it is too slow to arrive."""
    limit = request.crm_max_body_bytes
    with body_deadline():
        body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise ApiError(413, f"Request body is larger than {limit} bytes.")
    return body


def buffer_body(request):
    """The whole body (as `read_body`), left readable for the endpoint that reads it next."""
    body = read_body(request)
    request.stream = io.BytesIO(body)
    return body


def read_upload(request, field="file"):
    """(bytes of an uploaded file, form fields): a raw body, or one part of a multipart form."""
    if request.mimetype != "multipart/form-data":
        return read_body(request), {}
    # Werkzeug's form parser enforces the limit on chunked uploads as it reads.
    request.max_content_length = request.crm_max_body_bytes
    with body_deadline():
        files, form = request.files, request.form
    upload = files.get(field)
    if upload is None:
        raise ApiError(
            400, f"Send the file in the form field {field!r}.", fields={field: ["Missing."]}
        )
    return upload.read(), form


@contextlib.contextmanager
def body_deadline():
    """408 when the body does not arrive in time, 400 when it arrives broken."""
    timer = eventlet.Timeout(BODY_READ_SECONDS)
    try:
        yield
    except eventlet.Timeout as exc:
        if exc is not timer:
            raise
        raise ApiError(
            408, f"The request body did not arrive within {BODY_READ_SECONDS} s."
        ) from None
    except (OSError, ValueError):  # includes a malformed chunked encoding
        raise ApiError(400, "The request body could not be read.") from None
    finally:
        timer.cancel()


def read_json(request, schema):
    """Parse and validate a JSON body with `schema`; ApiError 415/400 otherwise."""
    if request.mimetype != "application/json":
        raise ApiError(415, "Send the body as JSON with Content-Type: application/json.")
    raw = read_body(request)
    try:
        payload = json.loads(raw, parse_constant=_no_constant, parse_float=_finite_float)
    except (ValueError, RecursionError):
        raise ApiError(400, "Request body is not valid JSON (numbers must be finite).") from None
    return load(schema, payload)


def read_optional_json(request, schema):
    """A JSON body that may be left out entirely: no body at all is read as `{}`."""
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    if not request.content_length and not chunked:
        return load(schema, {})
    return read_json(request, schema)


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")


def _finite_float(text):
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def read_query(request, schema):
    """Validate query parameters with `schema` (the last value of a repeated one wins)."""
    params = {key: values[-1] for key, values in request.args.lists()}
    return load(schema, params)


def load(schema, payload):
    where = unstorable_path(payload)
    if where:
        raise ApiError(400, "The request is not valid.", fields={where: [UNSTORABLE]})
    try:
        return schema.load(payload)
    except ValidationError as exc:
        raise ApiError(400, "The request is not valid.", fields=_as_fields(exc)) from None


def _as_fields(exc):
    messages = exc.normalized_messages()
    return messages if isinstance(messages, dict) else {"_schema": messages}


def rpc_ready(value):
    """Loaded request data as an RPC carries it: ids, times and decimals as text."""
    if isinstance(value, dict):
        return {key: rpc_ready(item) for key, item in value.items()}
    if isinstance(value, list):
        return [rpc_ready(item) for item in value]
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    if isinstance(value, datetime.date):  # datetimes too
        return value.isoformat()
    return value
