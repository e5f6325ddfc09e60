"""`crm demo`: a realistic data set loaded into a running system through its public HTTP API.

Nothing here touches a database or the broker: every record goes through the
gateway as a client app would send it, so the events, the reports and the
dashboard follow as they would in real use. The admin token only issues (and
at the end revokes) a token per sales rep (`sales`) and service agent
(`service`), who then do their own work: a rep creates their customers and
deals and logs their interactions, an agent works the tickets. Each token has
its own rate limit, as each person would.

What happens to each customer is `crm_common.demo_data`'s deterministic
story. Every POST carries an Idempotency-Key, so a retry after a 503 or a cut
connection runs once. A customer whose story was told to the end is marked
(`attributes.demo = "loaded"`): a second run finds it by its email (the 409
of a duplicate) and skips it; a customer an interrupted run left half told
is told again from the start.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests

from crm_common import demo_data

API = "/api/v1"
MARKER = ("demo", "loaded")
RETRIES = 6
TIMEOUT_SECONDS = 60
TOKEN_DAYS = 1


class DemoError(RuntimeError):
    """The system did not take the data set; the message says what answered what."""


class Api:
    """The gateway, as one token sees it; safe to share between threads."""

    def __init__(self, base_url, token):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._local = threading.local()

    @property
    def session(self):
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
            self._local.session.headers["Authorization"] = f"Bearer {self.token}"
        return self._local.session

    def call(self, method, path, body=None, key=None, ok=(200, 201), params=None):
        """The answer's JSON; retries what a retry cannot make happen twice (429, 503, a cut).

        A POST is retried only with its Idempotency-Key; GET, PATCH and DELETE set what they
        set, so sending them again changes nothing more.
        """
        headers = {"Idempotency-Key": key} if key else {}
        retryable = method != "POST" or key is not None
        for attempt in range(RETRIES):
            try:
                response = self.session.request(
                    method,
                    self.base_url + path,
                    json=body,
                    params=params,
                    headers=headers,
                    timeout=TIMEOUT_SECONDS,
                )
            except requests.ConnectionError as exc:
                if attempt == RETRIES - 1 or not retryable:
                    raise DemoError(f"{method} {path}: {exc}") from None
                time.sleep(2**attempt)
                continue
            code = error_code(response)
            if response.status_code == 429 or code == "IDEMPOTENCY_KEY_IN_PROGRESS":
                time.sleep(float(response.headers.get("Retry-After", "1")))
                continue
            if response.status_code == 503 and retryable and attempt < RETRIES - 1:
                time.sleep(2**attempt)
                continue
            if response.status_code not in ok:
                raise DemoError(f"{method} {path} answered {response.status_code}: {response.text}")
            return response.status_code, response.json() if response.content else None
        raise DemoError(f"{method} {path}: still refused after {RETRIES} tries")


def error_code(response):
    try:
        return response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


@dataclass
class Tally:
    """What the run created, counted across threads."""

    counts: dict = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, counts):
        with self.lock:
            for name, count in counts.items():
                self.counts[name] = self.counts.get(name, 0) + count

    def line(self):
        names = ("customers", "skipped", "deals", "won", "lost", "interactions", "feedback",
                 "tickets", "resolved", "satisfaction")  # fmt: skip
        return ", ".join(f"{self.counts.get(name, 0)} {name}" for name in names)


def load(base_url, admin_token, customers=300, seed=1, workers=4, echo=print):
    """Load `customers` customers' stories; returns the counts of what was created."""
    admin = Api(base_url, admin_token)
    check_system(admin)
    today = demo_data.today_utc()
    people, token_ids = issue_tokens(admin)
    tally = Tally()
    started = time.monotonic()
    every = max(1, customers // 10)
    echo(f"demo: loading {customers} customers (seed {seed}) into {base_url}")
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            stories = (demo_data.story(seed, index, today) for index in range(customers))
            for done, counts in enumerate(
                pool.map(lambda told: tell(told, people, seed), stories), start=1
            ):
                tally.add(counts)
                if done % every == 0 or done == customers:
                    echo(
                        f"demo: {done}/{customers} customers told "
                        f"({time.monotonic() - started:.0f} s): {tally.line()}"
                    )
    finally:
        for token_id in token_ids:
            admin.call("DELETE", f"{API}/auth/tokens/{token_id}", ok=(200, 204, 404))
    echo(f"demo: done. Open {base_url}/dashboard (reports follow the events within seconds).")
    return tally.counts


def check_system(admin):
    try:
        admin.call("GET", "/ready", ok=(200,))
        _, me = admin.call("GET", f"{API}/auth/me", ok=(200,))
    except DemoError as exc:
        raise DemoError(f"the system is not ready or the token is refused: {exc}") from None
    if me["role"] != "admin":
        raise DemoError(
            f"the demo issues a token per rep and agent: it needs an admin token, not {me['role']}"
        )


def issue_tokens(admin):
    """({person: Api} for each rep and agent, the ids of their tokens to revoke at the end)."""
    people, ids = {}, []
    for role, names in (("sales", demo_data.REPS), ("service", demo_data.AGENTS)):
        for name in names:
            _, issued = admin.call(
                "POST",
                f"{API}/auth/tokens",
                {"role": role, "subject": name, "expires_in_days": TOKEN_DAYS},
                ok=(201,),
            )
            people[name] = Api(admin.base_url, issued["token"])
            ids.append(issued["id"])
    return people, ids


def tell(story, people, seed):
    """Create one customer and everything that happens to them; the counts of what was made."""
    rep = people[story.owner]

    def key(*what):
        return ":".join(("demo", str(seed), str(story.index), *map(str, what)))

    customer_id = create_customer(rep, story, key("customer"))
    if customer_id is None:
        return {"skipped": 1}
    counts = {"customers": 1}
    deal_ids = []
    for number, deal in enumerate(story.deals):
        deal_ids.append(tell_deal(rep, customer_id, story.owner, deal, key("deal", number)))
        counts["deals"] = counts.get("deals", 0) + 1
        if deal.outcome != "open":
            counts[deal.outcome] = counts.get(deal.outcome, 0) + 1
    for number, done in enumerate(story.interactions):
        rep.call(
            "POST",
            f"{API}/interactions",
            {
                "customer_id": customer_id,
                "deal_id": deal_ids[done.deal] if done.deal is not None else None,
                "channel": done.channel,
                "direction": done.direction,
                "subject": done.subject,
                "outcome": done.outcome,
                "owner": story.owner,
                "occurred_at": done.occurred_at,
            },
            key=key("interaction", number),
        )
    counts["interactions"] = len(story.interactions)
    for number, (kind, text) in enumerate(story.feedback):
        body = {"customer_id": customer_id, "kind": kind, "text": text}
        rep.call("POST", f"{API}/feedback", body, key=key("feedback", number))
    counts["feedback"] = len(story.feedback)
    for number, ticket in enumerate(story.tickets):
        tell_ticket(rep, people[ticket.agent], customer_id, ticket, key("ticket", number))
        counts["tickets"] = counts.get("tickets", 0) + 1
        counts["feedback"] += ticket.complaint
        counts["resolved"] = counts.get("resolved", 0) + ("resolve" in ticket.steps)
        counts["satisfaction"] = counts.get("satisfaction", 0) + (ticket.score is not None)
    attributes = {**story.customer["attributes"], MARKER[0]: MARKER[1]}
    rep.call(
        "PATCH",
        f"{API}/customers/{customer_id}",
        {"status": story.final_status, "attributes": attributes},
    )
    return counts


def create_customer(rep, story, key):
    """The new customer's id; None when an earlier run told this story to the end."""
    status, body = rep.call("POST", f"{API}/customers", story.customer, key=key, ok=(201, 409))
    if status == 201:
        return body["id"]
    existing_id = body["error"].get("existing_id")
    if existing_id:
        _, existing = rep.call("GET", f"{API}/customers/{existing_id}", ok=(200,))
        if existing["email"] == story.customer["email"]:
            loaded = existing["attributes"].get(MARKER[0]) == MARKER[1]
            return None if loaded else existing["id"]
    # Someone else's customer looks like ours (same name and company): ours is another person.
    _, body = rep.call(
        "POST",
        f"{API}/customers",
        story.customer,
        key=f"{key}:allow",
        params={"allow_duplicate": "true"},
        ok=(201,),
    )
    return body["id"]


def tell_deal(rep, customer_id, owner, deal, key):
    _, created = rep.call(
        "POST",
        f"{API}/deals",
        {
            "customer_id": customer_id,
            "title": deal.title,
            "amount": deal.amount,
            "currency": deal.currency,
            "owner": owner,
            "expected_close_date": deal.expected_close_date,
        },
        key=key,
    )
    deal_id = created["id"]
    stages = demo_data.OPEN_STAGES
    for stage in stages[stages.index(created["stage"]) + 1 : stages.index(deal.furthest_stage) + 1]:
        rep.call("POST", f"{API}/deals/{deal_id}/stage", {"stage": stage}, key=f"{key}:{stage}")
    if deal.outcome == "won":
        rep.call("POST", f"{API}/deals/{deal_id}/won", {}, key=f"{key}:won")
    elif deal.outcome == "lost":
        rep.call("POST", f"{API}/deals/{deal_id}/lost", {"reason": deal.reason}, key=f"{key}:lost")
    return deal_id


def tell_ticket(rep, agent, customer_id, ticket, key):
    """A complaint (the rep passes it on) or a ticket the desk opens, worked by its agent."""
    if ticket.complaint:
        _, feedback = rep.call(
            "POST",
            f"{API}/feedback",
            {
                "customer_id": customer_id,
                "kind": "complaint",
                "text": ticket.subject,
                "channel": ticket.channel,
                "priority": ticket.priority,
            },
            key=key,
        )
        ticket_id = feedback["ticket"]["id"]
    else:
        _, opened = agent.call(
            "POST",
            f"{API}/tickets",
            {
                "customer_id": customer_id,
                "subject": ticket.subject,
                "priority": ticket.priority,
                "channel": ticket.channel,
            },
            key=key,
        )
        ticket_id = opened["id"]
    notes = {
        "assign": {"assignee": ticket.agent},
        "respond": {"note": "Thanks for reaching out; looking into it now."},
        "resolve": {"note": "Fixed; please tell us if it happens again."},
        "close": {},
    }
    for step in ticket.steps:
        agent.call("POST", f"{API}/tickets/{ticket_id}/{step}", notes[step], key=f"{key}:{step}")
    if ticket.score is not None:
        agent.call(
            "POST",
            f"{API}/tickets/{ticket_id}/satisfaction",
            {"score": ticket.score},
            key=f"{key}:satisfaction",
        )
