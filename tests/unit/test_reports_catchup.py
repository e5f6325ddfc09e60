import pytest
from nameko.testing.services import worker_factory

from services.reports import catchup
from services.reports.service import ReportsService
from tests.support.fakes import database_for


@pytest.fixture
def session_factory(make_db_url):
    url = make_db_url("sqlite", "reports", schema="reports")
    return database_for(url).session


class FakeLog:
    """A producer's events_since over a list, `page` events at a time."""

    def __init__(self, events, page=2):
        self.events = events
        self.page = page
        self.asked = []

    def __call__(self, cursor):
        self.asked.append(cursor)
        start = int(cursor or 0)
        chunk = self.events[start : start + self.page]
        return {"events": chunk, "next_cursor": str(start + len(chunk))}


def test_follows_the_log_from_the_stored_cursor(session_factory):
    log = FakeLog([{"n": n} for n in range(5)])
    applied = []
    assert catchup.follow_log("customers", log, applied.append, session_factory) == (5, True)
    assert applied == [{"n": n} for n in range(5)]

    log.events.append({"n": 5})
    assert catchup.follow_log("customers", log, applied.append, session_factory) == (1, True)
    assert log.asked[-2:] == ["5", "6"]  # resumed where it stopped, not from the start
    assert applied[-1] == {"n": 5}


def test_a_producer_that_does_not_answer_stops_the_run_quietly(session_factory):
    def down(cursor):
        raise ConnectionError("customers is not running")

    assert catchup.follow_log("customers", down, pytest.fail, session_factory) == (0, False)


def test_a_run_that_stops_at_its_page_limit_has_not_finished(session_factory, monkeypatch):
    monkeypatch.setattr(catchup, "MAX_PAGES_PER_RUN", 2)
    log = FakeLog([{"n": n} for n in range(5)])
    applied = []
    assert catchup.follow_log("customers", log, applied.append, session_factory) == (4, False)
    assert catchup.follow_log("customers", log, applied.append, session_factory) == (1, True)
    assert applied == [{"n": n} for n in range(5)]


def test_schedule_is_due_at_once_then_after_its_interval(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(catchup.time, "monotonic", lambda: now[0])
    schedule = catchup.Schedule(30)
    assert schedule.due("customers") is True
    schedule.ran("customers", finished=True)
    assert schedule.due("customers") is False
    assert schedule.due("pipeline") is True  # each producer's log on its own
    now[0] += 29.9
    assert schedule.due("customers") is False
    now[0] += 0.1
    assert schedule.due("customers") is True


def test_a_log_not_read_to_its_end_is_due_again_sooner_and_sooner_less(monkeypatch):
    """A producer still starting (or down) is asked again after 1, 2, 4 ... seconds, at
    most the interval; once its log is read to the end, the interval again."""
    now = [100.0]
    monkeypatch.setattr(catchup.time, "monotonic", lambda: now[0])
    schedule = catchup.Schedule(10)
    waits = []
    for _ in range(6):
        schedule.ran("pipeline", finished=False)
        waits.append(schedule.next_run["pipeline"] - now[0])
        now[0] = schedule.next_run["pipeline"]
        assert schedule.due("pipeline") is True
    assert waits == [1, 2, 4, 8, 10, 10]
    schedule.ran("pipeline", finished=True)
    assert schedule.next_run["pipeline"] - now[0] == 10
    schedule.ran("pipeline", finished=False)
    assert schedule.next_run["pipeline"] - now[0] == 1  # the backoff starts again


def test_a_run_that_raises_is_asked_again_soon(monkeypatch):
    """A log whose events could not be applied (the database away, say) was read no more
    than one that did not answer: due again after a second, not after the interval."""
    now = [100.0]
    monkeypatch.setattr(catchup.time, "monotonic", lambda: now[0])

    def failing(producer, **kwargs):
        raise ConnectionError("the reports database is away")

    monkeypatch.setattr(catchup, "follow_log", failing)
    schedule = catchup.Schedule(30)
    service = worker_factory(ReportsService, catch_up_schedule=schedule)
    with pytest.raises(ConnectionError):
        service.catch_up()
    [producer] = schedule.next_run
    assert schedule.next_run[producer] == 101.0
