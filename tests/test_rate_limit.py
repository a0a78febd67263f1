"""The Redis-backed rate limiter: parsing, the sliding window, lockouts, timeouts and many concurrent callers."""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from redis import Redis

from app.providers.rate_limit import MAX_JITTER_SECONDS, RateLimit, RateLimitTimeout, RedisRateLimiter, parse_rate_limit

# Grant times are read by the callers after Redis answered, so two of them can be late by a
# round trip plus scheduling; this is the slack allowed when checking that a window holds no more than its limit.
CLOCK_TOLERANCE = 0.02
# Redis measures waits on its clock and these tests on time.monotonic(); allow for rounding between the two.
SLACK = 0.003


@pytest.fixture
def connection(redis_url: str) -> Iterator[Redis]:
    """A connection to the test run's Redis."""
    conn = Redis.from_url(redis_url)
    yield conn
    conn.close()


@pytest.fixture
def make_limiter(connection: Redis) -> Iterator:
    """Build limiters on keys unique to this test, deleting their Redis keys afterwards."""
    limiters: list[RedisRateLimiter] = []

    def build(requests: int = 20, seconds: float = 0.5, lockout_seconds: float = 60.0,
              key: str | None = None) -> RedisRateLimiter:
        limiter = RedisRateLimiter(connection, RateLimit(requests, seconds), lockout_seconds=lockout_seconds,
                                   key=key or f"test:ratelimit:{uuid.uuid4().hex[:8]}")
        limiters.append(limiter)
        return limiter

    yield build
    for limiter in limiters:
        connection.delete(limiter.log_key, limiter.lockout_key)


def take_all(limiter: RedisRateLimiter) -> tuple[int, float]:
    """Take slots until refused; return how many were granted and the wait the refusal gave."""
    granted = 0
    while (wait := limiter.try_acquire()) == 0:
        granted += 1
        assert granted <= limiter.limit.requests, "granted more slots than the limit"
    return granted, wait


def timed_try(limiter: RedisRateLimiter) -> tuple[float, float, float]:
    """Call try_acquire; return its answer and the monotonic times just before and just after the call."""
    before = time.monotonic()
    wait = limiter.try_acquire()
    return wait, before, time.monotonic()


# --- parse_rate_limit -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("150/10", RateLimit(150, 10.0)),
    ("140/10.5", RateLimit(140, 10.5)),
    (" 20 / 1 ", RateLimit(20, 1.0)),
    ("1/0.25", RateLimit(1, 0.25)),
])
def test_parse_rate_limit_accepts_requests_per_seconds(text: str, expected: RateLimit) -> None:
    parsed = parse_rate_limit(text)
    assert parsed == expected
    assert isinstance(parsed.requests, int) and isinstance(parsed.seconds, float)


@pytest.mark.parametrize(("text", "message"), [
    ("abc", "REQUESTS/SECONDS"),
    ("", "REQUESTS/SECONDS"),
    ("150", "REQUESTS/SECONDS"),
    ("1.5/10", "whole number"),
    ("150/ten", "REQUESTS/SECONDS"),
    ("0/10", "at least 1 request"),
    ("-1/5", "at least 1 request"),
    ("10/0", "positive number of seconds"),
    ("10/-5", "positive number of seconds"),
    ("10/inf", "positive number of seconds"),
    ("10/nan", "positive number of seconds"),
])
def test_parse_rate_limit_rejects_nonsense_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        parse_rate_limit(text)
    assert repr(text) in str(caught.value)


def test_limiter_rejects_bad_settings(connection: Redis) -> None:
    with pytest.raises(ValueError, match="rq:"):
        RedisRateLimiter(connection, RateLimit(10, 1.0), key="rq:mine")
    with pytest.raises(ValueError, match="invalid rate limit"):
        RedisRateLimiter(connection, RateLimit(0, 1.0))
    with pytest.raises(ValueError, match="lockout_seconds"):
        RedisRateLimiter(connection, RateLimit(10, 1.0), lockout_seconds=0)


# --- the sliding window -----------------------------------------------------------------------------------------


def test_try_acquire_grants_exactly_the_limit_then_a_fitting_wait(make_limiter) -> None:
    limiter = make_limiter(requests=20, seconds=0.5)
    granted, before_first, after_first = timed_try(limiter)
    assert granted == 0
    for _ in range(19):
        assert limiter.try_acquire() == 0
    wait, before_refusal, after_refusal = timed_try(limiter)
    assert 0 < wait <= 0.5
    # The oldest grant is due to leave 0.5 s after it was made, and Redis answered between the refusal's brackets.
    assert before_first + 0.5 - after_refusal - SLACK <= wait <= after_first + 0.5 - before_refusal + SLACK

    time.sleep(0.5 + 0.02)  # every grant above is now out of the window, however slowly they were taken
    granted, wait = take_all(limiter)
    assert granted == 20
    assert 0 < wait <= 0.5


def test_the_window_slides_rather_than_resetting(make_limiter) -> None:
    limiter = make_limiter(requests=20, seconds=0.5)
    first_started = time.monotonic()
    for _ in range(10):
        assert limiter.try_acquire() == 0
    first_done = time.monotonic()
    time.sleep(0.3)
    second_started = time.monotonic()
    for _ in range(10):
        assert limiter.try_acquire() == 0
    second_done = time.monotonic()
    wait, before, after = timed_try(limiter)
    assert first_started + 0.5 - after - SLACK <= wait <= first_done + 0.5 - before + SLACK  # about 0.2 s

    # Once the first ten have left, exactly ten slots are free while the second ten are still in the window.
    time.sleep(max(0.0, first_done + 0.5 + 0.02 - time.monotonic()))
    for _ in range(10):
        assert limiter.try_acquire() == 0
    wait, before, after = timed_try(limiter)
    assert second_started + 0.5 - after - SLACK <= wait <= second_done + 0.5 - before + SLACK  # about 0.3 s


def test_keys_are_namespaced_and_expire_when_idle(make_limiter, connection: Redis) -> None:
    limiter = make_limiter(requests=5, seconds=0.5, key="stability:ratelimit")
    limiter.try_acquire()
    limiter.lock_out(0.2)
    keys = {key.decode() for key in connection.keys("*stability:ratelimit*")}
    assert keys == {limiter.log_key, limiter.lockout_key}
    for key in keys:
        assert not key.startswith("rq:")
        assert 0 < connection.pttl(key) <= 500
    assert connection.zcard(limiter.log_key) == 1


def test_limiters_on_different_keys_do_not_interfere(make_limiter) -> None:
    first, second = make_limiter(requests=5, seconds=1.0), make_limiter(requests=5, seconds=1.0)
    assert take_all(first)[0] == 5
    first.lock_out(1.0)
    assert first.locked_out_for() > 0
    assert second.locked_out_for() == 0.0
    assert take_all(second)[0] == 5


def test_limiters_on_the_same_key_share_the_budget(make_limiter, redis_url: str) -> None:
    key = f"test:ratelimit:{uuid.uuid4().hex[:8]}"
    first = make_limiter(requests=6, seconds=1.0, key=key)
    other_connection = Redis.from_url(redis_url)
    try:
        second = RedisRateLimiter(other_connection, RateLimit(6, 1.0), key=key)
        assert (second.log_key, second.lockout_key) == (first.log_key, first.lockout_key)
        for _ in range(3):
            assert first.try_acquire() == 0
            assert second.try_acquire() == 0
        assert first.try_acquire() > 0 and second.try_acquire() > 0
        second.lock_out(0.5)
        assert first.locked_out_for() > 0
    finally:
        other_connection.close()


# --- lockouts and timeouts --------------------------------------------------------------------------------------


def test_lock_out_stops_every_grant_for_its_length(make_limiter) -> None:
    limiter = make_limiter(requests=20, seconds=1.0, lockout_seconds=0.4)
    assert limiter.locked_out_for() == 0.0
    started = time.monotonic()
    limiter.lock_out()
    wait = limiter.try_acquire()
    assert 0.4 - (time.monotonic() - started) - SLACK <= wait <= 0.4
    assert 0.4 - (time.monotonic() - started) - SLACK <= limiter.locked_out_for() <= 0.4

    limiter.lock_out(0.1)  # shorter: must not shorten the current lockout
    assert limiter.locked_out_for() >= 0.4 - (time.monotonic() - started) - SLACK
    extended = time.monotonic()
    limiter.lock_out(0.6)  # longer: extends it
    assert 0.6 - (time.monotonic() - extended) - SLACK <= limiter.locked_out_for() <= 0.6

    before_acquire = time.monotonic()
    waited = limiter.acquire()
    assert 0.6 - (before_acquire - extended) - SLACK <= waited <= 0.6 + MAX_JITTER_SECONDS + 0.1
    assert limiter.locked_out_for() == 0.0
    # The lockout consumed no slots: the grant after it was the first of the full twenty.
    assert take_all(limiter)[0] == 19


def test_acquire_gives_up_at_once_when_the_wait_exceeds_the_timeout(make_limiter) -> None:
    limiter = make_limiter(requests=20, seconds=1.0)
    limiter.lock_out(5.0)
    started = time.monotonic()
    with pytest.raises(RateLimitTimeout):
        limiter.acquire(timeout=0.5)
    assert time.monotonic() - started < 0.1, "should fail fast rather than sleep to the deadline"


def test_acquire_times_out_on_a_full_window_but_waits_when_allowed(make_limiter) -> None:
    limiter = make_limiter(requests=5, seconds=0.5)
    started = time.monotonic()
    assert take_all(limiter)[0] == 5
    with pytest.raises(RateLimitTimeout):
        limiter.acquire(timeout=0.05)
    with pytest.raises(RateLimitTimeout):
        limiter.acquire(timeout=0)
    before_acquire = time.monotonic()
    waited = limiter.acquire(timeout=1.0)
    assert 0.5 - (before_acquire - started) - SLACK <= waited <= 0.5 + MAX_JITTER_SECONDS + 0.1


# --- many callers at once ---------------------------------------------------------------------------------------


def acquire_until(limiter: RedisRateLimiter, start_at: float, deadline: float, grants: list[float]) -> None:
    """Call acquire in a loop from start_at until deadline, appending the wall time of every grant."""
    time.sleep(max(0.0, start_at - time.time()))
    while (remaining := deadline - time.time()) > 0:
        try:
            limiter.acquire(timeout=remaining)
        except RateLimitTimeout:
            return
        grants.append(time.time())


def run_threads(limiter: RedisRateLimiter, count: int, start_at: float, deadline: float) -> list[float]:
    """Run `count` threads sharing one limiter and return all their grant times."""
    grants: list[float] = []  # list.append is atomic under the GIL
    threads = [threading.Thread(target=acquire_until, args=(limiter, start_at, deadline, grants))
               for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return grants


def child_process(url: str, limit: RateLimit, key: str, threads: int, start_at: float, deadline: float,
                  results: multiprocessing.Queue) -> None:
    """In a forked process: a connection and limiter of its own, several threads, grant times sent back."""
    connection = Redis.from_url(url)
    try:
        results.put(run_threads(RedisRateLimiter(connection, limit, key=key), threads, start_at, deadline))
    finally:
        connection.close()


def busiest_window(grants: list[float], limit: RateLimit) -> tuple[int, float]:
    """Return the index of the first grant starting the tightest run of requests+1 grants, and that run's span."""
    ordered = sorted(grants)
    spans = [(ordered[i + limit.requests] - ordered[i], i) for i in range(len(ordered) - limit.requests)]
    span, index = min(spans)
    return index, span


@pytest.mark.processes
def test_threads_and_processes_together_stay_under_the_limit_and_near_it(redis_url: str, connection: Redis) -> None:
    limit, duration = RateLimit(20, 1.0), 2.5
    key = f"test:ratelimit:{uuid.uuid4().hex[:8]}"
    parent_limiter = RedisRateLimiter(connection, limit, key=key)
    start_at = time.time() + 0.5  # long enough for every process to fork and connect first
    deadline = start_at + duration
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    # Fork before starting any thread here, so no child inherits a lock held by a thread of ours.
    processes = [context.Process(target=child_process, args=(redis_url, limit, key, 2, start_at, deadline, results))
                 for _ in range(3)]
    try:
        for process in processes:
            process.start()
        parent_grants = run_threads(parent_limiter, 3, start_at, deadline)
        child_grants = [results.get(timeout=10) for _ in processes]  # before join: a full pipe blocks the child
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
        connection.delete(parent_limiter.log_key, parent_limiter.lockout_key)
    assert all(process.exitcode == 0 for process in processes)
    # Greedy callers make the split between processes uneven, so only ask that more than one took part.
    assert sum(1 for share in [parent_grants, *child_grants] if share) >= 2, "only one process was ever granted"

    grants = parent_grants + [grant for grants in child_grants for grant in grants]
    # Not merely safe but close to the allowed rate: the window refills about three times in 2.5 s,
    # and with callers always waiting, each refill should be taken within moments of becoming free.
    assert len(grants) >= 0.8 * limit.requests * duration / limit.seconds, f"only {len(grants)} grants"
    index, span = busiest_window(grants, limit)
    assert span >= limit.seconds - CLOCK_TOLERANCE, (
        f"{limit.requests + 1} grants within {span:.3f} s starting at grant {index}: over the limit")
    ordered = sorted(grants)
    two_refills = ordered[2 * limit.requests] - ordered[0]
    assert two_refills <= 2 * limit.seconds + 0.1, f"the third window's first grant came {two_refills:.3f} s in"
