"""The HTTP API as an OpenAPI 3 document, built from the gateway's own routes.

Every HTTP entrypoint of the gateway service is an operation, so an endpoint
cannot be left out: its method and path come from its route, its summary and
description from its docstring, and the rest from what `@api` was told:

- `query`: the schema of its query parameters;
- `body`: the schema of its JSON body, or `CSV_UPLOAD`;
- `body_optional`: True where the body may be left out (no body reads as `{}`);
- `answers`: {status: the schema of the answer's JSON, a `Content`, or None for no body};
- `location`: True where the success answer's `Location` header names the record;
- `errors`: statuses of errors beyond those implied below;
- `cases`: {a value of the route's one path parameter: keywords for that value}; each
  value is a path of its own (the reports' CSVs: each report has its own filters).

The schemas are the marshmallow classes that validate the requests
(gateway/schemas.py) and describe the answers (gateway/answers.py).
Errors implied: 414 everywhere (too long a URL), 401, 403, 429 and 503 under /api/
(where a token is needed), 400 with a query or a body, 408, 413 and 415 with a body,
404 with a path parameter, 400 and 409 with an Idempotency-Key (every POST under
/api/ that `@api` does not exempt). Answers under /api/ carry the rate limit's
X-RateLimit-* headers (but a 401 and a 414, which no request counted gets).
"""

import decimal
import functools
import http
import inspect
import re
from dataclasses import dataclass

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_cls
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.web.handlers import HttpRequestHandler

from crm_common import version
from gateway import answers, schemas
from gateway.http import ERROR_CODES, REQUEST_ID_HEADER
from gateway.idempotency import KEY_HEADER as IDEMPOTENCY_KEY
from gateway.idempotency import REPLAYED_HEADER as REPLAYED
from gateway.rate_limit import HEADERS as RATE_LIMIT_HEADERS
from gateway.rate_limit import REMAINING_HEADER

OPENAPI_VERSION = "3.0.3"
TITLE = "CRM HTTP API"
KEYWORDS = frozenset({"query", "body", "body_optional", "answers", "location", "errors", "cases"})
AUTHENTICATED = "/api/"
BEARER = "bearerAuth"
# Tags in the order the page shows them: (name, what, the paths that carry it).
TAGS = (
    ("customers", "Profiles, search, duplicates, merge, import and export, erasure.", ()),
    ("pipelines", "Pipelines and their ordered stages.", ()),
    ("deals", "Deals and their way through a pipeline's stages.", ()),
    ("interactions", "Calls, emails, meetings, messages and notes.", ()),
    ("feedback", "Complaints, praise and suggestions; a complaint opens a ticket.", ()),
    ("tickets", "The service desk: tickets, their workflow, satisfaction.", ()),
    ("reports", "Views built from events; each tells how fresh it is.", ("/api/v1/admin/reports",)),
    ("auth", "Tokens and roles.", ()),
    (
        "dead-letters",
        "Events a service could not apply, kept with their error: list, replay, discard.",
        ("/api/v1/admin/dead-letters",),
    ),
    ("system", "Whether the gateway and what it needs are up.", ("/health", "/ready")),
    ("docs", "This document and the page that shows it.", ("/openapi.json", "/docs")),
    ("dashboard", "The reports as charts, for a person.", ("/dashboard",)),
)
API_PREFIX = re.compile(r"^/api/v\d+/([^/<]+)")
PATH_PARAMETER = re.compile(r"<(?:([^:<>]+):)?([^<>]+)>")
# Path parameters by their converter; `id` (gateway.http.IdConverter) takes a UUID.
CONVERTED = {"id": {"type": "string", "format": "uuid"}}
# Errors no request counted by the rate limit answers: no valid token, or too long a URL
# (the HTTP server answers that before the gateway reads the request).
NEVER_COUNTED = frozenset({401, 414})
ERROR_DESCRIPTIONS = {
    400: "The request is not valid: `fields` says what is wrong with which field.",
    401: "No token, or not a valid one.",
    403: "The token's role may not do this, or the record is not the caller's.",
    404: "No such record.",
    408: "The body did not arrive in time.",
    409: "A conflict: a likely duplicate (`existing_id`), a taken name, a concurrent change, "
    "an Idempotency-Key used for another request or still running.",
    413: "The body is larger than the gateway takes.",
    414: "The request line (method, path, query) is longer than the HTTP server reads.",
    415: "The body's Content-Type is not one this endpoint reads.",
    422: "The record's state does not allow this step.",
    429: "More requests with this token in a minute than CRM_RATE_LIMIT_PER_MINUTE.",
    503: "A service, the broker or Redis does not answer; a write may still happen.",
}
DESCRIPTION = """\
The CRM's one HTTP front door. JSON under `/api/v1`; every `/api/v1` call needs
`Authorization: Bearer <token>`, and the token's role decides what it may do.

Lists take `limit` (1-500, default 50) and `cursor` (the `next_cursor` of the page
before) and answer `{"items": [...], "next_cursor": ...}`. Reports carry `as_of`
(time of the newest event applied) and `lag_seconds`.

Every failure has one shape, `{"error": {"code", "message", "fields"?}}`, and every
answer an `X-Request-Id` header that finds the request in the logs.
"""


@dataclass(frozen=True)
class Content:
    """A body that is not a JSON schema's: {media type: OpenAPI schema}."""

    media_types: dict


CSV = Content({"text/csv": {"type": "string"}})
CSV_UPLOAD = Content(
    {
        "text/csv": {"type": "string", "description": "The file: UTF-8, a header row first."},
        "multipart/form-data": {
            "type": "object",
            "required": ["file"],
            "properties": {
                "file": {"type": "string", "format": "binary"},
                "mapping": {
                    "type": "string",
                    "description": 'JSON: {"column in the file": "field"}.',
                },
            },
        },
    }
)
HTML = Content({"text/html": {"type": "string"}})
ASSET = Content(
    {
        "text/css": {"type": "string"},
        "text/javascript": {"type": "string"},
        "image/png": {"type": "string", "format": "binary"},
        "image/svg+xml": {"type": "string"},
    }
)
# The answers of a page and of its files (gateway.static_files): 304 while the copy is current.
PAGE = {200: HTML, 304: None}
PAGE_FILE = {200: ASSET, 304: None}
JSON_DOCUMENT = Content({"application/json": {"type": "object"}})


@dataclass(frozen=True)
class Route:
    """One method of one HTTP entrypoint of a service."""

    method: str
    rule: str
    name: str
    endpoint: object

    @property
    def described(self):
        return getattr(self.endpoint, "described", {})

    @property
    def keyed(self):
        """Whether the endpoint takes an Idempotency-Key (a POST of the client API)."""
        return self.rule.startswith(AUTHENTICATED) and getattr(
            self.endpoint, "idempotency_key", False
        )

    @property
    def path_parameters(self):
        """The parameters of the path a client fills in; `cases` spell theirs out."""
        return [] if self.described.get("cases") else PATH_PARAMETER.findall(self.rule)

    def paths(self):
        """(OpenAPI path, operation id, keywords) of each path this route answers on."""
        path = PATH_PARAMETER.sub(r"{\2}", self.rule)
        described = {key: value for key, value in self.described.items() if key != "cases"}
        cases = self.described.get("cases")
        if not cases:
            yield path, self.name, described
            return
        ((_, parameter),) = PATH_PARAMETER.findall(self.rule)
        for value, keywords in cases.items():
            yield (
                path.replace(f"{{{parameter}}}", value),
                f"{self.name}_{value}",
                {**described, **keywords},
            )


def routes(service_cls):
    """Every HTTP route the service class declares, in the order of its source."""
    found = []
    for name, member in inspect.getmembers(service_cls, inspect.isfunction):
        for entrypoint in getattr(member, ENTRYPOINT_EXTENSIONS_ATTR, ()):
            if isinstance(entrypoint, HttpRequestHandler):
                for method in entrypoint.method.split(","):
                    found.append(Route(method.strip().upper(), entrypoint.url, name, member))
    return sorted(found, key=source_order)


def source_order(route):
    """Tag by tag, the routes in the order their module declares them."""
    code = inspect.unwrap(route.endpoint).__code__
    return tag_of(route.rule)[1], code.co_filename, code.co_firstlineno, route.method


def tag_of(rule):
    """(tag, its position) of a route: by the paths TAGS names, else its /api/v1 resource."""
    for position, (tag, _, prefixes) in enumerate(TAGS):
        if any(rule == prefix or rule.startswith(prefix + "/") for prefix in prefixes):
            return tag, position
    match = API_PREFIX.match(rule)
    tag = match.group(1) if match else rule.strip("/").split("/")[0]
    positions = {name: position for position, (name, _, _) in enumerate(TAGS)}
    return tag, positions.get(tag, len(TAGS))


@functools.cache
def document(service_cls):
    """The OpenAPI document (a dict) of the service class's HTTP API."""
    marshmallow = MarshmallowPlugin(schema_name_resolver=schema_name)
    spec = APISpec(
        title=TITLE,
        version=version(),
        openapi_version=OPENAPI_VERSION,
        plugins=[marshmallow],
        info={"description": DESCRIPTION},
        servers=[{"url": "/", "description": "The gateway that serves this document."}],
        tags=[{"name": name, "description": what} for name, what, _ in TAGS],
        security=[{BEARER: []}],
    )
    marshmallow.converter.add_attribute_function(ranges_as_numbers)
    spec.components.security_scheme(
        BEARER,
        {
            "type": "http",
            "scheme": "bearer",
            "description": "CRM_ADMIN_TOKEN, or a token an admin issued (/api/v1/auth/tokens).",
        },
    )
    spec.components.header(
        REQUEST_ID_HEADER,
        {
            "description": "The request's id in the logs: the caller's, when it sent a sane one.",
            "schema": {"type": "string"},
        },
    )
    spec.components.header(
        REPLAYED,
        {
            "description": "`true` on the first answer to this Idempotency-Key, given again.",
            "schema": {"type": "string", "enum": ["true"]},
        },
    )
    for name in RATE_LIMIT_HEADERS:
        spec.components.header(name, rate_limit_header(name))
    spec.components.parameter(
        IDEMPOTENCY_KEY,
        "header",
        {
            "description": "Any key of the client's (a UUID, say): a repeat of the same "
            "request with it gets the first answer instead of running again.",
            "schema": {"type": "string", "pattern": "^[ -~]{1,255}$"},
        },
    )
    spec.components.schema("Error", schema=answers.Error)
    for status, description in ERROR_DESCRIPTIONS.items():
        spec.components.response(error_name(status), error_response(status, description))
    operations = {}
    for route in routes(service_cls):
        for path, operation_id, described in route.paths():
            operations.setdefault(path, {})[route.method.lower()] = operation(
                route, operation_id, described
            )
    for path, by_method in operations.items():
        spec.path(path=path, operations=by_method)
    return spec.to_dict()


def operation(route, operation_id, described):
    unknown = set(described) - KEYWORDS
    if unknown:
        raise TypeError(f"{route.name}: @api does not know {', '.join(sorted(unknown))}")
    summary, _, description = (inspect.getdoc(route.endpoint) or "").partition("\n\n")
    found = {
        "operationId": operation_id,
        "tags": [tag_of(route.rule)[0]],
        "summary": " ".join(summary.split()),
        "parameters": parameters(route, described),
        "responses": responses(route, described),
    }
    if description:
        found["description"] = description
    if described.get("body"):
        found["requestBody"] = {
            "required": not described.get("body_optional", False),
            "content": content_of(described["body"]),
        }
    if not route.rule.startswith(AUTHENTICATED):
        found["security"] = []
    return found


def parameters(route, described):
    found = [
        {
            "in": "path",
            "name": name,
            "required": True,
            "schema": CONVERTED.get(converter, {"type": "string"}),
        }
        for converter, name in route.path_parameters
    ]
    if described.get("query"):
        found.append({"in": "query", "schema": described["query"]})
    if route.keyed:
        found.append(IDEMPOTENCY_KEY)  # the shared parameter, by its name
    return found


def responses(route, described):
    found = {}
    for status, answer in described.get("answers", {}).items():
        response = {"description": http.HTTPStatus(status).phrase, "headers": request_id()}
        if described.get("location") and 200 < status < 300:
            response["headers"]["Location"] = {
                "description": "Where the record is (or the rebuild, for a rebuild).",
                "required": True,
                "schema": {"type": "string"},
            }
        if route.keyed and 200 <= status < 300:
            response["headers"][REPLAYED] = REPLAYED
        if route.rule.startswith(AUTHENTICATED):
            response["headers"].update({name: name for name in RATE_LIMIT_HEADERS})
        if answer is not None:
            response["content"] = content_of(answer)
        found[str(status)] = response
    for status in sorted(error_statuses(route, described)):
        found.setdefault(str(status), error_name(status))
    return found


def error_statuses(route, described):
    statuses = {414, *described.get("errors", ())}
    if route.rule.startswith(AUTHENTICATED):
        statuses |= {401, 403, 429, 503}
    if route.keyed:
        statuses |= {400, 409}
    if described.get("query") or described.get("body"):
        statuses.add(400)
    if described.get("body"):
        statuses |= {408, 413, 415}
    if route.path_parameters:
        statuses.add(404)
    return statuses


def content_of(body):
    if isinstance(body, Content):
        return {media_type: {"schema": schema} for media_type, schema in body.media_types.items()}
    return {"application/json": {"schema": body}}


def error_name(status):
    """The name of the shared response of an error status: 404 -> NotFound."""
    return "".join(word.capitalize() for word in ERROR_CODES[status].split("_"))


def error_response(status, description):
    response = {
        "description": description,
        "headers": request_id(),
        "content": {"application/json": {"schema": answers.Error}},
    }
    if status == 401:
        response["headers"]["WWW-Authenticate"] = {"schema": {"type": "string"}}
    if status in (409, 429):
        response["headers"]["Retry-After"] = {
            "description": "Seconds to wait: a rate limit, an Idempotency-Key still running.",
            "schema": {"type": "integer"},
        }
    if status == 429:
        # Refused by the rate limit, which says where the token stands.
        for name in RATE_LIMIT_HEADERS:
            response["headers"][name] = {**rate_limit_header(name), "required": True}
    elif status not in NEVER_COUNTED:
        response["headers"].update({name: name for name in RATE_LIMIT_HEADERS})
    return response


def rate_limit_header(name):
    """A header of the rate limit: on answers to /api/ requests with a valid token, while
    the limit is on and Redis answers (gateway.rate_limit)."""
    return {
        "description": RATE_LIMIT_HEADERS[name] + " On answers to /api/ requests with a "
        "valid token, while CRM_RATE_LIMIT_PER_MINUTE is not 0 and Redis answers.",
        "schema": {"type": "integer", "minimum": 0 if name == REMAINING_HEADER else 1},
    }


def request_id():
    return {REQUEST_ID_HEADER: REQUEST_ID_HEADER}


def schema_name(schema):
    """A schema's name in the document: its class name (an empty body is `Empty`)."""
    cls = resolve_schema_cls(schema)
    return "Empty" if cls is schemas.StrictSchema else cls.__name__


def ranges_as_numbers(converter, field, ret, **kwargs):
    """A decimal field answering as text gets its range as text from apispec: make it numbers."""
    return {
        key: json_number(ret[key])
        for key in ("minimum", "maximum")
        if isinstance(ret.get(key), str | decimal.Decimal)
    }


def json_number(value):
    number = decimal.Decimal(value)
    return int(number) if number == number.to_integral_value() else float(number)
