"""A report read through the reports service's RPC: the cache in front, the database behind."""

from nameko.testing.services import worker_factory

from services.reports.cache import AnswerCache
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
        reports = worker_factory(ReportsService, db=session, cache=cache)
        computed = reports.customers_by_status_owner()
        assert not session.in_transaction()
        calls = redis.calls
        cached = reports.customers_by_status_owner()
        assert not session.in_transaction()
        assert redis.calls == calls, "the hot answer came from memory"
        assert cached["total"] == computed["total"] == 1
