"""The report answer cache: keys follow the view's watermark; a Redis away is left alone."""

import redis

from services.reports.cache import REST_SECONDS, AnswerCache


class FlakyRedis:
    def __init__(self):
        self.store, self.down, self.calls = {}, False, 0

    def get(self, key):
        return self._call(lambda: self.store.get(key))

    def set(self, key, value, ex):
        return self._call(lambda: self.store.__setitem__(key, value))

    def _call(self, action):
        self.calls += 1
        if self.down:
            raise redis.ConnectionError("Connection refused")
        return action()


class Clock:
    now = 100.0

    def __call__(self):
        return self.now


def test_keys_differ_by_report_watermark_and_query_but_not_by_query_order():
    cache = AnswerCache(FlakyRedis(), "crm", 60)
    key = cache.key("funnel", 7, {"owner": "kim", "from": "2027-01-01"})
    assert key.startswith("crm:reports:answers:funnel:7:")
    assert key == cache.key("funnel", 7, {"from": "2027-01-01", "owner": "kim"})
    assert key != cache.key("funnel", 8, {"owner": "kim", "from": "2027-01-01"})
    assert key != cache.key("funnel", 7, {"owner": "ann", "from": "2027-01-01"})
    assert key != cache.key("sales", 7, {"owner": "kim", "from": "2027-01-01"})


def test_an_answer_comes_back_and_redis_away_is_a_miss_then_left_alone():
    client, clock = FlakyRedis(), Clock()
    # Nothing held in memory: every get asks Redis.
    cache = AnswerCache(client, "crm", 60, clock=clock, memory_bytes=0)
    cache.put("k", {"total": 3})
    assert cache.get("k") == {"total": 3}

    client.down = True
    calls = client.calls
    assert cache.get("k") is None
    assert client.calls == calls + 1
    cache.put("k2", {"total": 4})
    assert cache.get("k") is None
    assert client.calls == calls + 1, "resting: Redis is not asked again at once"

    client.down = False
    clock.now += REST_SECONDS + 0.1
    assert cache.get("k") == {"total": 3}


def test_a_zero_lifetime_stores_nothing():
    client = FlakyRedis()
    cache = AnswerCache(client, "crm", 0)
    cache.put("k", {"total": 1})
    assert client.store == {}


def test_a_hot_answer_comes_from_memory_without_asking_redis():
    client = FlakyRedis()
    cache = AnswerCache(client, "crm", 60)
    cache.put("computed", {"total": 3})
    client.store["fetched"] = '{"total": 4}'
    assert cache.get("fetched") == {"total": 4}
    calls = client.calls
    assert cache.get("computed") == {"total": 3}
    assert cache.get("fetched") == {"total": 4}
    assert client.calls == calls
    client.down = True
    assert cache.get("computed") == {"total": 3}, "held in memory: Redis away changes nothing"


def test_what_a_reader_adds_to_its_answer_stays_out_of_the_cache():
    cache = AnswerCache(FlakyRedis(), "crm", 60)
    answer = {"total": 3}
    cache.put("k", answer)
    answer["lag_seconds"] = 1.5
    cache.get("k")["rebuilding"] = True
    assert cache.get("k") == {"total": 3}


def test_memory_keeps_the_most_recently_used_answers_within_its_size():
    client = FlakyRedis()
    size = len('{"n": 1}')
    cache = AnswerCache(client, "crm", 60, memory_bytes=2 * size)
    cache.put("a", {"n": 1})
    cache.put("b", {"n": 2})
    cache.get("a")
    cache.put("c", {"n": 3})  # "b" was used least recently
    assert set(cache.held) == {"a", "c"}
    assert cache.held_bytes == 2 * size
    calls = client.calls
    assert cache.get("b") == {"n": 2}, "still in Redis"
    assert client.calls == calls + 1


def test_memory_forgets_answers_after_their_lifetime_and_when_told():
    client, clock = FlakyRedis(), Clock()
    cache = AnswerCache(client, "crm", 60, clock=clock)
    cache.put("k", {"total": 3})
    client.store.clear()
    clock.now += 61
    assert cache.get("k") is None
    cache.put("k", {"total": 3})
    client.store.clear()
    assert cache.forget() == 1
    assert cache.get("k") is None
    assert cache.held_bytes == 0
