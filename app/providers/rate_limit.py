"""One request-rate limit shared through Redis by every process that calls the Stability API (no Flask import)."""

from __future__ import annotations

import math
import random
import secrets
import time
from typing import NamedTuple

import redis

DEFAULT_KEY = "stability:ratelimit"
# A little random extra sleep so waiters released by the same slot don't all hit Redis at the same instant.
MAX_JITTER_SECONDS = 0.02

# KEYS[1] the log of grants (a sorted set scored in microseconds), KEYS[2] the lockout key.
# ARGV[1] requests allowed per window, ARGV[2] window in microseconds, ARGV[3] a random member suffix.
# Returns 0 when a slot was taken, else the microseconds to wait before trying again.
# The clock is Redis's TIME, so processes on hosts whose clocks disagree still share one timeline.
ACQUIRE_SCRIPT = """
local lockout_ms = redis.call('PTTL', KEYS[2])
if lockout_ms > 0 then
    return lockout_ms * 1000
end
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
    redis.call('ZADD', KEYS[1], now, clock[1] .. '.' .. clock[2] .. ':' .. ARGV[3])
    redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
    return 0
end
-- The (count - limit)th oldest grant must leave the window before the count drops below the limit;
-- usually that is the oldest, but not if the limit was lowered while older grants were still in the log.
local entry = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
return math.max(tonumber(entry[2]) + window - now, 1)
"""

# KEYS[1] the lockout key, ARGV[1] its length in milliseconds. Only ever lengthens the lockout.
LOCK_OUT_SCRIPT = """
local wanted = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < wanted then
    redis.call('SET', KEYS[1], '1', 'PX', wanted)
end
return redis.call('PTTL', KEYS[1])
"""


class RateLimit(NamedTuple):
    """At most `requests` requests in any `seconds`-long window."""

    requests: int
    seconds: float


def parse_rate_limit(text: str) -> RateLimit:
    """Parse "REQUESTS/SECONDS" such as "150/10" or "140/10.5"; raise ValueError for anything else."""
    usage = f"rate limit must be REQUESTS/SECONDS with a whole number of requests, such as '150/10'; got {text!r}"
    requests_text, slash, seconds_text = str(text).strip().partition("/")
    if not slash:
        raise ValueError(usage)
    try:
        requests = int(requests_text.strip())
        seconds = float(seconds_text.strip())
    except ValueError:
        raise ValueError(usage) from None
    if requests < 1:
        raise ValueError(f"rate limit must allow at least 1 request; got {text!r}")
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"rate limit window must be a positive number of seconds; got {text!r}")
    return RateLimit(requests, seconds)


class RateLimitTimeout(Exception):
    """Waiting for a rate-limit slot would take longer than the caller allowed."""


class RedisRateLimiter:
    """A sliding-window rate limit plus a shared lockout, kept in Redis so every process obeys one budget."""

    def __init__(self, connection: redis.Redis, limit: RateLimit, lockout_seconds: float = 60.0,
                 key: str = DEFAULT_KEY) -> None:
        """Limit callers sharing `key` on this Redis to `limit`, pausing them all `lockout_seconds` after a 429."""
        if limit.requests < 1 or not (math.isfinite(limit.seconds) and limit.seconds > 0):
            raise ValueError(f"invalid rate limit {limit!r}")
        if not (math.isfinite(lockout_seconds) and lockout_seconds > 0):
            raise ValueError(f"lockout_seconds must be positive; got {lockout_seconds!r}")
        if key.startswith("rq:"):
            raise ValueError("rate limiter keys must stay out of RQ's 'rq:' namespace")
        self.connection = connection
        self.limit = limit
        self.lockout_seconds = lockout_seconds
        # The hash tag keeps both keys in one Redis Cluster slot, which a script touching both requires.
        self.log_key = f"{{{key}}}:log"
        self.lockout_key = f"{{{key}}}:lockout"
        self._window_us = max(1, round(limit.seconds * 1_000_000))
        self._acquire_script = connection.register_script(ACQUIRE_SCRIPT)
        self._lock_out_script = connection.register_script(LOCK_OUT_SCRIPT)

    def try_acquire(self) -> float:
        """Take a slot now and return 0.0, or take nothing and return the seconds to wait before trying again."""
        wait_us = self._acquire_script(keys=[self.log_key, self.lockout_key],
                                       args=[self.limit.requests, self._window_us, secrets.token_hex(8)])
        return int(wait_us) / 1_000_000

    def acquire(self, timeout: float | None = None) -> float:
        """Block until a slot is taken and return the seconds waited; raise RateLimitTimeout if that exceeds timeout."""
        start = time.monotonic()
        while True:
            wait = self.try_acquire()
            waited = time.monotonic() - start
            if wait == 0:
                return waited
            if timeout is not None and waited + wait > timeout:
                # Failing now, not at the deadline, frees the caller during a 60 s lockout straight away.
                raise RateLimitTimeout(f"rate limit slot needs {wait:.3f} s more; waited {waited:.3f} s of {timeout} s")
            pause = wait + random.uniform(0, MAX_JITTER_SECONDS)
            if timeout is not None:
                pause = min(pause, max(0.0, timeout - waited))
            time.sleep(pause)

    def lock_out(self, seconds: float | None = None) -> None:
        """Give nobody a slot for `seconds` (default lockout_seconds), lengthening but never shortening a lockout."""
        seconds = self.lockout_seconds if seconds is None else seconds
        if not (math.isfinite(seconds) and seconds > 0):
            raise ValueError(f"lockout must be a positive number of seconds; got {seconds!r}")
        self._lock_out_script(keys=[self.lockout_key], args=[math.ceil(seconds * 1000)])

    def locked_out_for(self) -> float:
        """Return the seconds left in the current lockout, 0.0 if there is none."""
        remaining_ms = self.connection.pttl(self.lockout_key)
        # PTTL answers -2 for a missing key and -1 for one without expiry (never written by this class).
        return remaining_ms / 1000 if remaining_ms > 0 else 0.0
