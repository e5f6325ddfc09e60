"""Client apps that keep writing through the gateway while a test breaks something.

Each write creates a customer with an email of its own and an Idempotency-Key
of its own, and every answer is recorded, so that a test can say precisely
what happened to each write: acknowledged (201), refused with a clear 503, or
anything else (a 500, no answer in time), which a fault test treats as a bug.
"""

import uuid
from dataclasses import dataclass, field

import eventlet
import requests

from tests.support.settings import ADMIN_TOKEN
from tests.support.waiting import wait_for

# A client that got a 503 waits this long before its next write, as a client app would.
BACKOFF_SECONDS = 0.2
REQUEST_TIMEOUT_SECONDS = 15


@dataclass
class Write:
    key: str
    body: dict
    answers: list = field(default_factory=list)  # (status or the exception's name, body)

    @property
    def status(self):
        return self.answers[-1][0]


class Writers:
    """`count` clients creating customers through the gateway at `base_url` until stopped."""

    def __init__(self, base_url, count=3, token=ADMIN_TOKEN):
        self.base_url = base_url
        self.count = count
        self.headers = {"Authorization": f"Bearer {token}"}
        self.writes = []
        self.threads = []
        self.stopping = False

    def __enter__(self):
        self.threads = [eventlet.spawn(self._write_until_stopped, n) for n in range(self.count)]
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self.stopping = True
        for thread in self.threads:
            thread.wait()
        self.threads = []

    def _write_until_stopped(self, number):
        http = requests.Session()
        while not self.stopping:
            tag = uuid.uuid4().hex[:10]
            write = Write(
                key=f"write-{tag}",
                body={"name": f"Writer {number} {tag}", "email": f"{tag}@example.com"},
            )
            self.writes.append(write)
            self.send(http, write)
            if write.status != 201:
                eventlet.sleep(BACKOFF_SECONDS)

    def send(self, http, write):
        try:
            response = http.post(
                f"{self.base_url}/api/v1/customers",
                json=write.body,
                headers={**self.headers, "Idempotency-Key": write.key},
                timeout=REQUEST_TIMEOUT_SECONDS,
            )
        except requests.RequestException as exc:
            write.answers.append((type(exc).__name__, None))
            return
        try:
            body = response.json()
        except ValueError:
            body = response.text
        write.answers.append((response.status_code, body))

    def seen(self, status):
        """How many answers so far had `status`."""
        return sum(answer[0] == status for write in list(self.writes) for answer in write.answers)

    def statuses(self):
        return {answer[0] for write in self.writes for answer in write.answers}

    def retry_refused(self):
        """Send every write whose last answer was not a 201 again, with its own key."""
        http = requests.Session()
        for write in self.writes:
            if write.status != 201:
                self.send(http, write)

    def customer_ids(self):
        """The customer of every write, by the answer that names it: a 201's id, or the
        `existing_id` of a 409 for a write whose first try ran but whose answer was lost."""
        ids = {}
        for write in self.writes:
            status, body = write.answers[-1]
            if status == 201:
                ids[write.key] = body["id"]
            elif status == 409 and body["error"]["code"] == "CONFLICT":
                ids[write.key] = body["error"]["existing_id"]
        return ids


# Writes counted at each step of an outage: enough to see each state, few enough to be quick.
WRITES_PER_STEP = 6


def write_through_outage(base_url, outage, recovery, while_down=lambda: None):
    """Writers at work before, during and after an outage: `outage()` starts it once some
    writes are acknowledged, `while_down()` runs once some are refused, `recovery()` ends
    it; answers the Writers once writes are acknowledged again. Every answer on the way
    was a 201 or a 503: a 500, or no answer within the client's timeout, fails."""
    with Writers(base_url) as writers:
        wait_for(lambda: writers.seen(201) >= WRITES_PER_STEP, timeout=30, message="writes before")
        outage()
        wait_for(
            lambda: writers.seen(503) >= WRITES_PER_STEP,
            timeout=30,
            message="writes refused with 503 during the outage",
        )
        while_down()
        before = writers.seen(201)
        recovery()
        wait_for(
            lambda: writers.seen(201) >= before + WRITES_PER_STEP,
            timeout=60,
            message="writes acknowledged again after the outage",
        )
    assert writers.statuses() <= {201, 503}, writers.statuses()
    return writers


def assert_nothing_lost(writers, stored_ids, client):
    """Every write is stored and in the report, once its refused tries are sent again.

    A refused write sent again with its key runs now, or names the customer its first try
    made when only the answer was lost: a client that retries loses nothing.
    `stored_ids()` reads the customer ids in the customers database.
    """
    writers.retry_refused()
    assert {write.status for write in writers.writes} <= {201, 409}
    acknowledged = writers.customer_ids()
    assert len(acknowledged) == len(writers.writes)
    stored = stored_ids()
    assert sorted(stored) == sorted(set(acknowledged.values()))
    assert len(stored) == len(writers.writes)

    def report_total():
        response = client.get("/api/v1/reports/customers")
        return response.status_code == 200 and response.json()["total"] == len(stored)

    wait_for(report_total, timeout=60, message=f"{len(stored)} customers in the report")
