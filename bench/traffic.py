"""Open-loop traffic: requests fired at planned times, whether or not earlier ones answered.

A closed loop (send, wait, send) slows down with the system it measures and so hides
its stalls; here a slow answer does not delay the next request, and each request's
latency is counted from the moment it was planned, not from when it got out.
"""

import time
from dataclasses import dataclass, field

import eventlet
import eventlet.queue
import requests

QUEUE_SECONDS = 10


def schedule(rate, seconds, start=0.0):
    """Planned offsets (s) of `rate` requests per second for `seconds`, evenly spaced."""
    if rate <= 0 or seconds <= 0:
        raise ValueError("rate and seconds must be positive")
    return [start + number / rate for number in range(round(rate * seconds))]


@dataclass
class Outcome:
    number: int
    planned: float  # perf_counter
    sent: float = 0.0  # perf_counter, when a connection was free
    answered: float = 0.0  # perf_counter
    answered_wall: float = 0.0  # time.time(), to compare with times other processes record
    status: int = 0  # 0: no answer (not sent, connection error or time-out)
    body: dict = field(default_factory=dict)
    tag: object = None

    @property
    def latency_ms(self):
        """From the planned moment to the answer: waiting for a connection counts."""
        return (self.answered - self.planned) * 1000

    @property
    def ok(self):
        return 200 <= self.status < 300


class Client:
    """`connections` keep-alive sessions to one gateway, with a bearer token."""

    def __init__(self, base_url, token, connections):
        self.base_url = base_url
        self.sessions = eventlet.Queue()
        for _ in range(connections):
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {token}"
            self.sessions.put(session)

    def send(self, outcome, method, path, body=None, timeout=30):
        """Fill in `outcome` with the answer to one request (never raises for a failure).

        A request that finds no free connection for QUEUE_SECONDS is not sent (status 0):
        past the system's capacity an open loop's queue only grows, and the run must end."""
        try:
            session = self.sessions.get(timeout=QUEUE_SECONDS)
        except eventlet.queue.Empty:
            outcome.sent = outcome.answered = time.perf_counter()
            outcome.answered_wall = time.time()
            return outcome
        try:
            outcome.sent = time.perf_counter()
            try:
                response = session.request(method, self.base_url + path, json=body, timeout=timeout)
            except requests.RequestException:
                outcome.status = 0
            else:
                outcome.status = response.status_code
                if response.content and response.headers.get("Content-Type", "").startswith(
                    "application/json"
                ):
                    outcome.body = response.json()
        finally:
            outcome.answered = time.perf_counter()
            outcome.answered_wall = time.time()
            self.sessions.put(session)
        return outcome


def run_open_loop(plan, fire, pool_size=500):
    """Call `fire(outcome)` in a green thread at each planned offset of `plan` (seconds from
    now). Answers the outcomes, in plan order, once every one is answered.

    `fire` sends the request and fills in its outcome (Client.send does). `pool_size`
    bounds the requests in flight; a request that finds it full starts late, and the
    lateness shows in its latency."""
    pool = eventlet.GreenPool(pool_size)
    started = time.perf_counter()
    outcomes = []
    for number, offset in enumerate(plan):
        planned = started + offset
        wait = planned - time.perf_counter()
        if wait > 0:
            eventlet.sleep(wait)
        outcome = Outcome(number=number, planned=planned)
        outcomes.append(outcome)
        pool.spawn_n(fire, outcome)
    pool.waitall()
    return outcomes


def achieved_rate(outcomes):
    """Answers per second over the span from the first planned request to the last answer."""
    if not outcomes:
        return 0.0
    span = max(outcome.answered for outcome in outcomes) - outcomes[0].planned
    return len(outcomes) / span if span > 0 else 0.0


def statuses(outcomes):
    """{status: count} of the answers that were not 2xx (0: no answer)."""
    found = {}
    for outcome in outcomes:
        if not outcome.ok:
            found[outcome.status] = found.get(outcome.status, 0) + 1
    return found
