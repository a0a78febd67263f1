"""A worker's rate limiter through a short Redis outage: it waits for Redis instead of failing the attempt."""

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from app import services as services_module
from app.services import OutageTolerantLimiter, build_services


class FlakyLimiter:
    """A limiter whose Redis is down for the first `failures` calls."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0
        self.lockouts: list[float | None] = []

    def acquire(self, timeout=None):
        self.calls += 1
        if self.calls <= self.failures:
            raise RedisConnectionError("Connection refused")
        return 0.0

    def lock_out(self, seconds=None):
        self.lockouts.append(seconds)


@pytest.fixture(autouse=True)
def no_sleeping(monkeypatch):
    monkeypatch.setattr(services_module.time, "sleep", lambda seconds: None)


def test_a_short_redis_outage_is_waited_out_and_the_slot_taken():
    flaky = FlakyLimiter(failures=3)
    assert OutageTolerantLimiter(flaky, patience=30).acquire(timeout=150) == 0.0
    assert flaky.calls == 4


def test_a_long_outage_still_fails_the_attempt_in_the_end(monkeypatch):
    clock = iter(range(0, 1000, 10))
    monkeypatch.setattr(services_module.time, "monotonic", lambda: next(clock))
    with pytest.raises(RedisConnectionError):
        OutageTolerantLimiter(FlakyLimiter(failures=1000), patience=30).acquire(timeout=150)


def test_only_workers_wait_for_redis(app):
    config = {**app.config, "STABILITY_API_KEY": "key"}
    assert isinstance(build_services(config, in_worker=True).stability.limiter, OutageTolerantLimiter)
    assert not isinstance(build_services(config).stability.limiter, OutageTolerantLimiter)


def test_lockouts_pass_through():
    flaky = FlakyLimiter(failures=0)
    OutageTolerantLimiter(flaky).lock_out(60)
    assert flaky.lockouts == [60]
