"""A report read through the reports service's RPC: the cache in front, the database behind."""

from nameko.testing.services import worker_factory

from services.reports import rebuild
from services.reports.cache import AnswerCache, ViewStates
from services.reports.service import ReportsService, apply_customer
from tests.unit.test_report_cache import FlakyRedis
from tests.unit.test_reports_funnel import new_session
from tests.unit.test_reports_views import created


def test_a_read_gives_its_database_connection_back_before_it_answers(sqlite_templates, tmp_path):
    """Under load every read in flight would otherwise hold a connection while its reply
    goes out: the pool opens and closes connections, or reads wait for one."""
    redis = FlakyRedis()
    cache = AnswerCache(redis, "crm", 60)
    with new_session(sqlite_templates, tmp_path) as session:
        apply_customer(session, created("c-1"))
        session.commit()
        states = ViewStates(rebuild.read_states, seconds=0)
        reports = worker_factory(ReportsService, db=session, cache=cache, states=states)
        computed = reports.customers_by_status_owner()
        assert not session.in_transaction()
        calls = redis.calls
        cached = reports.customers_by_status_owner()
        assert not session.in_transaction()
        assert redis.calls == calls, "the hot answer came from memory"
        assert cached["total"] == computed["total"] == 1


class Clock:
    now = 100.0

    def __call__(self):
        return self.now


def test_the_views_states_are_read_again_once_they_are_older_than_their_lifetime():
    asked = []

    def read_states(session):
        asked.append(len(asked) + 1)
        return {"funnel": f"funnel-{len(asked)}", "sales": f"sales-{len(asked)}"}, False

    clock = Clock()
    states = ViewStates(read_states, clock=clock, seconds=0.1)
    assert states.read(None, "funnel") == ("funnel-1", False)
    clock.now += 0.05
    assert states.read(None, "funnel") == ("funnel-1", False)
    assert states.read(None, "sales") == ("sales-1", False), "one read serves every view"
    assert states.read(None, "segments") == (None, False), "a view with no events yet"
    clock.now += 0.06
    assert states.read(None, "sales") == ("sales-2", False)
    assert asked == [1, 2]


def test_hot_reads_within_the_states_lifetime_ask_the_database_nothing(sqlite_templates, tmp_path):
    asked = []

    def read_states(session):
        asked.append(True)
        return rebuild.read_states(session)

    cache = AnswerCache(FlakyRedis(), "crm", 60)
    states = ViewStates(read_states, clock=Clock(), seconds=0.1)
    with new_session(sqlite_templates, tmp_path) as session:
        apply_customer(session, created("c-1"))
        session.commit()
        reports = worker_factory(ReportsService, db=session, cache=cache, states=states)
        answers = [reports.customers_by_status_owner() for _ in range(3)]
        sales = reports.sales_report()
    assert asked == [True], "one statement for the states of both views"
    assert sales["as_of"] is None, "no deal event yet"
    assert [answer["total"] for answer in answers] == [1, 1, 1]
