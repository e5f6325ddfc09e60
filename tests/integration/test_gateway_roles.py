"""Every endpoint of the gateway, tried with every role, with no token and with bad ones.

The endpoints are the operations of the gateway's own OpenAPI document (built
from its route table), so a new endpoint fails here until `EXPECTED` says who
may call it. `EXPECTED` is written from SPEC section 4 and the README's role
table, not from gateway/auth.py: it is what the gateway is checked against.

An admitted role must get its answer (2xx), a role that may not must get 403
(and the record stays as it was), and every /api/ endpoint answers 401 to no
token, an unknown or revoked token, and another scheme. Deals are changed by
sales reps only where they own them: a sales token on someone else's deal is
a 403, on its own deal it is served; managers and admins change any deal.

One system serves the whole module (each call makes the records it needs).
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from gateway import openapi
from gateway.service import GatewayService
from tests.support.http import Client, assert_error, created
from tests.support.streams import publish
from tests.support.waiting import wait_for

ROLES = ("admin", "manager", "sales", "service", "marketing", "viewer")
EVERYONE = frozenset(ROLES)
# Everyone but the viewer: create and change customers, log interactions and feedback.
CONTRIBUTORS = EVERYONE - {"viewer"}
MANAGERS = frozenset({"admin", "manager"})
DEALMAKERS = frozenset({"admin", "manager", "sales"})
SERVICE_DESK = frozenset({"admin", "manager", "service"})
EXPORTERS = frozenset({"admin", "manager", "marketing"})
ADMINS = frozenset({"admin"})
# Someone no token acts as: the owner of the deals that are not the caller's.
SOMEONE_ELSE = "someone-else"


def subject_of(role):
    return f"{role}-user"


@dataclass(frozen=True)
class Case:
    """Who may call an operation, and how to call it: `call(world, owner)` answers
    (method, path, keyword arguments of the request); `owner` is who owns the record
    it touches, where records have owners."""

    roles: frozenset
    call: Callable
    # Sales reps may do it only to the records they own (deals).
    owned: bool = False


class World:
    """Records for the calls, made by the admin (not under test)."""

    def __init__(self, admin):
        self.admin = admin
        self._customer = None
        # The deal the latest call was about, and the title of the latest new one.
        self.last_deal = None
        self.last_title = None

    def customer(self, fresh=True):
        if not fresh and self._customer:
            return self._customer
        name = f"Role Test {uuid.uuid4().hex[:10]}"
        found = created(self.admin.post("/api/v1/customers?allow_duplicate=true", {"name": name}))
        self._customer = self._customer or found["id"]
        return found["id"]

    def deal(self, owner, won=False):
        deal = created(
            self.admin.post(
                "/api/v1/deals",
                {
                    "customer_id": self.customer(fresh=False),
                    "title": "Roles",
                    "amount": "100.00",
                    "currency": "EUR",
                    "owner": owner,
                },
            )
        )["id"]
        if won:
            self.step(f"/api/v1/deals/{deal}/won", {})
        self.last_deal = deal
        return deal

    def ticket(self, *steps):
        """A ticket taken through `steps` (assign, respond, resolve)."""
        ticket = created(
            self.admin.post(
                "/api/v1/tickets", {"customer_id": self.customer(fresh=False), "subject": "Help"}
            )
        )["id"]
        for step in steps:
            self.step(
                f"/api/v1/tickets/{ticket}/{step}", {"assignee": "kim"} if step == "assign" else {}
            )
        return ticket

    def step(self, path, body):
        response = self.admin.post(path, body)
        assert response.status_code == 200, response.text

    def interaction(self):
        return created(
            self.admin.post(
                "/api/v1/interactions",
                {"customer_id": self.customer(fresh=False), "channel": "note"},
            )
        )["id"]

    def pipeline(self):
        return created(
            self.admin.post(
                "/api/v1/pipelines",
                {
                    "name": f"Roles {uuid.uuid4().hex[:10]}",
                    "stages": [{"name": "due", "probability": 0.5}],
                },
            )
        )["id"]

    def dead_letter(self):
        """A message reports cannot apply (not an event at all), once it is a dead letter."""

        def kept():
            answer = self.admin.get(f"{DEAD_LETTERS}/reports?limit=500")
            assert answer.status_code == 200, answer.text
            return {letter["id"] for letter in answer.json()["items"]}

        before = kept()
        publish(self.admin.config, {"not": "an event", "marker": uuid.uuid4().hex})
        [new] = wait_for(lambda: kept() - before, message="the message to be a dead letter")
        return new

    def token(self):
        return created(self.admin.post("/api/v1/auth/tokens", {"role": "viewer", "subject": "t"}))[
            "id"
        ]


class Nowhere:
    """Ids of records that do not exist, for calls that must be refused before any
    record is looked up (401, 403): they cost nothing to make."""

    last_deal = last_title = None

    def _id(self, *args, **kwargs):
        return str(uuid.uuid4())

    customer = deal = ticket = interaction = pipeline = token = dead_letter = _id


def get(path):
    return lambda world, owner: ("GET", path(world) if callable(path) else path, {})


def post(path, body=None):
    def call(world, owner):
        return "POST", path(world) if callable(path) else path, {"json": body or {}}

    return call


CUSTOMERS = "/api/v1/customers"
DEALS = "/api/v1/deals"
TICKETS = "/api/v1/tickets"
REPORTS = "/api/v1/reports"
DEAD_LETTERS = "/api/v1/admin/dead-letters"


def csv_import(world, owner):
    row = f"name,email\nImported,{uuid.uuid4().hex[:12]}@example.com\n"
    return "POST", f"{CUSTOMERS}/import", {"data": row, "headers": {"Content-Type": "text/csv"}}


def merge(world, owner):
    survivor, merged = world.customer(), world.customer()
    return "POST", f"{CUSTOMERS}/{survivor}/merge", {"json": {"merge_ids": [merged]}}


def new_deal(world, owner):
    world.last_deal, world.last_title = None, f"Mine {uuid.uuid4().hex[:10]}"
    body = {
        "customer_id": world.customer(fresh=False),
        "title": world.last_title,
        "amount": "10.00",
        "currency": "EUR",
        "owner": owner,
    }
    return "POST", DEALS, {"json": body}


def on_deal(suffix, method="POST", body=None, won=False):
    def call(world, owner):
        return method, f"{DEALS}/{world.deal(owner, won=won)}{suffix}", {"json": body or {}}

    return call


def on_ticket(step, body=None, after=()):
    def call(world, owner):
        return "POST", f"{TICKETS}/{world.ticket(*after)}/{step}", {"json": body or {}}

    return call


def public(path):
    return Case(EVERYONE, get(path))


EXPECTED = {
    # customers
    "create_customer": Case(
        CONTRIBUTORS, post(f"{CUSTOMERS}?allow_duplicate=true", {"name": "Someone New"})
    ),
    "list_customers": Case(EVERYONE, get(CUSTOMERS)),
    "export_customers": Case(EXPORTERS, get(f"{CUSTOMERS}/export")),
    "import_customers": Case(CONTRIBUTORS, csv_import),
    "find_duplicates": Case(EVERYONE, get(f"{CUSTOMERS}/duplicates")),
    "get_customer": Case(EVERYONE, get(lambda w: f"{CUSTOMERS}/{w.customer(fresh=False)}")),
    "update_customer": Case(
        CONTRIBUTORS,
        lambda w, owner: ("PATCH", f"{CUSTOMERS}/{w.customer()}", {"json": {"company": "Acme"}}),
    ),
    "erase_customer": Case(
        MANAGERS, lambda w, owner: ("DELETE", f"{CUSTOMERS}/{w.customer()}", {})
    ),
    "customer_data": Case(MANAGERS, get(lambda w: f"{CUSTOMERS}/{w.customer(fresh=False)}/data")),
    "customer_timeline": Case(
        EVERYONE, get(lambda w: f"{CUSTOMERS}/{w.customer(fresh=False)}/timeline")
    ),
    "merge_customers": Case(MANAGERS, merge),
    # pipelines
    "list_pipelines": Case(EVERYONE, get("/api/v1/pipelines")),
    "create_pipeline": Case(
        MANAGERS,
        lambda w, owner: (
            "POST",
            "/api/v1/pipelines",
            {
                "json": {
                    "name": f"P {uuid.uuid4().hex[:10]}",
                    "stages": [{"name": "a", "probability": 0.5}],
                }
            },
        ),
    ),
    "get_pipeline": Case(EVERYONE, get(lambda w: f"/api/v1/pipelines/{w.pipeline()}")),
    "update_pipeline": Case(
        MANAGERS,
        lambda w, owner: (
            "PATCH",
            f"/api/v1/pipelines/{w.pipeline()}",
            {"json": {"name": f"P {uuid.uuid4().hex[:10]}"}},
        ),
    ),
    # deals: a sales rep creates them in its own name and changes only its own
    "create_deal": Case(DEALMAKERS, new_deal, owned=True),
    "list_deals": Case(EVERYONE, get(DEALS)),
    "get_deal": Case(EVERYONE, get(lambda w: f"{DEALS}/{w.deal(SOMEONE_ELSE)}")),
    "deal_history": Case(EVERYONE, get(lambda w: f"{DEALS}/{w.deal(SOMEONE_ELSE)}/history")),
    "update_deal": Case(DEALMAKERS, on_deal("", "PATCH", {"title": "Renamed"}), owned=True),
    "move_deal": Case(DEALMAKERS, on_deal("/stage", body={"stage": "qualified"}), owned=True),
    "win_deal": Case(DEALMAKERS, on_deal("/won"), owned=True),
    "lose_deal": Case(DEALMAKERS, on_deal("/lost", body={"reason": "Price"}), owned=True),
    "reopen_deal": Case(DEALMAKERS, on_deal("/reopen", won=True), owned=True),
    # interactions, feedback, tickets
    "log_interaction": Case(
        CONTRIBUTORS,
        lambda w, owner: (
            "POST",
            "/api/v1/interactions",
            {"json": {"customer_id": w.customer(fresh=False), "channel": "note"}},
        ),
    ),
    "list_interactions": Case(EVERYONE, get("/api/v1/interactions")),
    "get_interaction": Case(EVERYONE, get(lambda w: f"/api/v1/interactions/{w.interaction()}")),
    "submit_feedback": Case(
        CONTRIBUTORS,
        lambda w, owner: (
            "POST",
            "/api/v1/feedback",
            {"json": {"customer_id": w.customer(fresh=False), "kind": "praise", "text": "Nice"}},
        ),
    ),
    "open_ticket": Case(
        SERVICE_DESK,
        lambda w, owner: (
            "POST",
            TICKETS,
            {"json": {"customer_id": w.customer(fresh=False), "subject": "Help"}},
        ),
    ),
    "list_tickets": Case(EVERYONE, get(TICKETS)),
    "get_ticket": Case(EVERYONE, get(lambda w: f"{TICKETS}/{w.ticket()}")),
    "assign_ticket": Case(SERVICE_DESK, on_ticket("assign", {"assignee": "kim"})),
    "respond_ticket": Case(SERVICE_DESK, on_ticket("respond", after=("assign",))),
    "resolve_ticket": Case(SERVICE_DESK, on_ticket("resolve", after=("assign", "respond"))),
    "close_ticket": Case(SERVICE_DESK, on_ticket("close", after=("assign", "respond", "resolve"))),
    "reopen_ticket": Case(
        SERVICE_DESK, on_ticket("reopen", after=("assign", "respond", "resolve"))
    ),
    "record_satisfaction": Case(
        SERVICE_DESK,
        on_ticket("satisfaction", {"score": 4}, after=("assign", "respond", "resolve")),
    ),
    # reports: anyone may read them; rebuilding them is the admin's
    **{
        f"{name}_report": Case(EVERYONE, get(f"{REPORTS}/{name}"))
        for name in ("customers", "sales", "funnel", "segments", "satisfaction", "service")
    },
    "segment_members": Case(EVERYONE, get(f"{REPORTS}/segments/potential/customers")),
    **{
        f"report_as_csv_{name}": Case(EVERYONE, get(f"{REPORTS}/{name}.csv"))
        for name in ("customers", "sales", "funnel", "segments", "satisfaction", "service")
    },
    "rebuild_reports": Case(ADMINS, post("/api/v1/admin/reports/rebuild")),
    "rebuild_status": Case(ADMINS, get("/api/v1/admin/reports/rebuild")),
    # dead letters: the admin's
    "dead_letter_summary": Case(ADMINS, get(DEAD_LETTERS)),
    "list_dead_letters": Case(ADMINS, get(f"{DEAD_LETTERS}/reports")),
    "get_dead_letter": Case(ADMINS, get(lambda w: f"{DEAD_LETTERS}/reports/{w.dead_letter()}")),
    "replay_dead_letter": Case(
        ADMINS, post(lambda w: f"{DEAD_LETTERS}/reports/{w.dead_letter()}/replay")
    ),
    "replay_dead_letters": Case(ADMINS, post(f"{DEAD_LETTERS}/reports/replay")),
    "discard_dead_letter": Case(
        ADMINS,
        lambda w, owner: ("DELETE", f"{DEAD_LETTERS}/reports/{w.dead_letter()}", {}),
    ),
    # tokens
    "issue_token": Case(ADMINS, post("/api/v1/auth/tokens", {"role": "viewer", "subject": "v"})),
    "list_tokens": Case(ADMINS, get("/api/v1/auth/tokens")),
    "revoke_token": Case(
        ADMINS, lambda w, owner: ("DELETE", f"/api/v1/auth/tokens/{w.token()}", {})
    ),
    "whoami": Case(EVERYONE, get("/api/v1/auth/me")),
    # open to anyone, token or not
    "health": public("/health"),
    "ready": public("/ready"),
    "openapi_document": public("/openapi.json"),
    "docs_page": public("/docs"),
    "docs_file": public("/docs/start.js"),
    "dashboard": public("/dashboard"),
    "dashboard_file": public("/dashboard/dashboard.js"),
}

OPERATIONS = [
    (path, method.upper(), operation["operationId"], bool(operation.get("security", True)))
    for path, by_method in openapi.document(GatewayService)["paths"].items()
    for method, operation in by_method.items()
]


@pytest.fixture(scope="module")
def module_settings():
    # Far more requests a minute than the default limit, all of them the admin's setup.
    return {"CRM_RATE_LIMIT_PER_MINUTE": "100000"}


@pytest.fixture(scope="module")
def callers(module_client):
    """A client for each role (with its own subject), and the admin's world of records."""
    clients = {role: module_client.as_role(role, subject_of(role)) for role in ROLES}
    world = World(module_client)
    # So that "the latest rebuild" exists for whoever may ask for it.
    assert world.admin.post("/api/v1/admin/reports/rebuild", {}).status_code == 202
    # The funnel answers 404 until reports have the default pipeline's event: a case run
    # first (alone, say) must not find it missing.
    wait_for(
        lambda: world.admin.get("/api/v1/reports/funnel").status_code == 200,
        message="the reports to know the default pipeline",
    )
    return clients, world


def test_every_operation_has_an_expected_entry():
    documented = {operation_id for *_, operation_id, _ in OPERATIONS}
    assert documented - set(EXPECTED) == set(), "say in EXPECTED who may call these"
    assert set(EXPECTED) - documented == set(), "EXPECTED names operations that are gone"


@pytest.mark.parametrize(
    ("path", "method", "operation_id", "secured"),
    OPERATIONS,
    ids=[operation_id for *_, operation_id, _ in OPERATIONS],
)
def test_each_role_may_call_exactly_what_it_is_allowed(
    callers, path, method, operation_id, secured
):
    clients, world = callers
    case = EXPECTED[operation_id]
    assert secured == path.startswith("/api/"), "a token is needed under /api/ only"
    for role, caller in clients.items():
        # An admin or a manager acts on someone else's deal; a sales rep on its own.
        owner = subject_of(role) if role not in MANAGERS and case.owned else SOMEONE_ELSE
        # Refused before the record is looked up: a record that does not exist will do.
        method_, url, kwargs = case.call(world if role in case.roles else Nowhere(), owner)
        response = caller.request(method_, url, **kwargs)
        if role in case.roles:
            assert 200 <= response.status_code < 300, (role, response.status_code, response.text)
        else:
            error = assert_error(response, 403, "FORBIDDEN")
            assert role in error["message"], error


@pytest.mark.parametrize("operation_id", [name for name, case in EXPECTED.items() if case.owned])
def test_a_sales_rep_may_not_touch_someone_elses_deal(callers, operation_id):
    clients, world = callers
    sales = clients["sales"]
    method, url, kwargs = EXPECTED[operation_id].call(world, SOMEONE_ELSE)
    before = world.last_deal and world.admin.get(f"{DEALS}/{world.last_deal}").json()
    assert_error(sales.request(method, url, **kwargs), 403, "FORBIDDEN")
    if before:
        after = world.admin.get(f"{DEALS}/{world.last_deal}").json()
        assert after == before, "the refused change was made"
    else:
        theirs = world.admin.get(f"{DEALS}?owner={SOMEONE_ELSE}&limit=500").json()["items"]
        assert world.last_title not in {deal["title"] for deal in theirs}, "the deal was made"


BAD_AUTHORIZATIONS = {
    "no token": {},
    "an unknown token": {"Authorization": "Bearer crm_made_up_0123456789"},
    "another scheme": {"Authorization": "Basic YWRtaW46YWRtaW4="},
    "an empty bearer": {"Authorization": "Bearer "},
}


@pytest.mark.parametrize(
    ("path", "method", "operation_id", "secured"),
    OPERATIONS,
    ids=[operation_id for *_, operation_id, _ in OPERATIONS],
)
def test_no_valid_token_is_401_under_api_and_no_matter_elsewhere(
    callers, module_client, path, method, operation_id, secured
):
    world = callers[1] if not secured else Nowhere()
    method_, url, kwargs = EXPECTED[operation_id].call(world, SOMEONE_ELSE)
    sent = kwargs.pop("headers", {})
    for what, headers in BAD_AUTHORIZATIONS.items():
        response = module_client.request(
            method_, url, auth=False, headers={**sent, **headers}, **kwargs
        )
        if secured:
            assert_error(response, 401, "UNAUTHORIZED")
            assert response.headers["WWW-Authenticate"].startswith("Bearer"), what
        else:
            assert response.status_code == 200, (what, response.text)


def test_a_revoked_token_is_401_at_once(callers, module_client):
    clients, _ = callers
    token = created(module_client.post("/api/v1/auth/tokens", {"role": "manager", "subject": "m"}))
    manager = Client(module_client.base_url, token["token"])
    assert manager.get(CUSTOMERS).status_code == 200
    deleted = module_client.request("DELETE", f"/api/v1/auth/tokens/{token['id']}")
    assert deleted.status_code == 204
    assert_error(manager.get(CUSTOMERS), 401, "UNAUTHORIZED")
    assert_error(manager.post(CUSTOMERS, {"name": "Too late"}), 401, "UNAUTHORIZED")
