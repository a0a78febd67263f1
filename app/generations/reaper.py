"""The reaper: finds generations (and account deletions) a crash left unfinished and moves them on; run by every
worker process.

Evidence of life is a timestamp on the row (``heartbeat_at``), not a key in Redis: the row survives an
emptied Redis, the sweep is one indexed query, and the heartbeat of all of a process's jobs is one UPDATE.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass

from flask import Flask
from redis.exceptions import RedisError

from app.generations import erasure, lifecycle, queue, statements
from app.media_store import orphans
from app.providers.base import GenerationError
from app.services import services
from app.text.wording import count_of
from app.webhooks import delivery as webhook_delivery

log = logging.getLogger(__name__)
TURN_KEY = "imagegen:reaper-turn"
CHUNK = 1000


@dataclass(frozen=True)
class Sweep:
    """What one sweep did."""

    requeued_stale: int = 0
    failed_stale: int = 0
    requeued_lost: int = 0
    resumed: bool = False
    orphans_deleted: int = 0
    deletions_resumed: int = 0

    @property
    def changed(self) -> bool:
        """True if the sweep moved anything."""
        return bool(self.requeued_stale or self.failed_stale or self.requeued_lost or self.resumed
                    or self.orphans_deleted or self.deletions_resumed)

    def __str__(self) -> str:
        """What the sweep did, in words, for the log."""
        done = [f"{what} {count_of(count, 'image')}{why}" for count, what, why in (
            (self.requeued_stale, "requeued", " whose worker went quiet"),
            (self.failed_stale, "failed", " whose worker went quiet, out of attempts"),
            (self.requeued_lost, "requeued", " whose job Redis had lost")) if count]
        if self.orphans_deleted:
            done.append(f"deleted {count_of(self.orphans_deleted, 'file')} no image holds")
        if self.resumed:
            done.append("resumed the paused queue")
        return "; ".join(done) or "nothing to do"


def _take_turn(app: Flask) -> bool:
    """One sweep per interval across every process and host; the guarded transitions make a second one harmless."""
    redis = services(app).redis
    if redis is None:
        return True
    interval_ms = int(app.config["REAPER_INTERVAL_SECONDS"] * 1000 * 0.8)
    try:
        return bool(redis.set(TURN_KEY, f"{os.getpid()}", nx=True, px=max(1, interval_ms)))
    except RedisError:
        return True  # the database part of the sweep needs no Redis


def sweep(app: Flask, force: bool = False) -> Sweep:
    """Requeue or fail stale running rows; resume stalled account deletions; requeue queued rows whose job Redis
    lost; resume a paused queue if it may."""
    if not force and not _take_turn(app):
        return Sweep()
    stale_before = lifecycle.seconds_ago(app.config["REAPER_STALE_SECONDS"])
    requeued_stale, failed_stale = lifecycle.reap_stale_running(stale_before)
    # Account deletions whose job died (a killed worker) or never got to Redis start again.
    deletions_resumed = erasure.resume_stalled(stale_before)
    requeued_lost, resumed, orphans_deleted = 0, False, 0
    try:
        requeued_lost = _requeue_lost(app)
        resumed = _resume_if_balance_allows(app)
        # Files whose deletion met a store that was down (a failed job's, a deleted image's) go now.
        orphans_deleted = orphans.collect(services(app).stores, services(app).require_redis())
        # Webhook deliveries whose next attempt is due (or whose job was lost) go back to the queue.
        webhook_delivery.enqueue_due()
    except RedisError as exc:
        log.warning("reaper: Redis unavailable (%s); lost jobs are looked for next sweep", exc)
    result = Sweep(requeued_stale, failed_stale, requeued_lost, resumed, orphans_deleted, deletions_resumed)
    if result.changed:
        log.warning("reaper: %s", result)
    return result


def _requeue_lost(app: Flask) -> int:
    """Queued rows older than one sweep interval whose job is not in Redis: enqueue them again."""
    redis = services(app).require_redis()
    # Younger rows may be between their commit and their enqueue; they are looked at next time.
    since = lifecycle.seconds_ago(app.config["REAPER_INTERVAL_SECONDS"])
    requeued, after_id = 0, 0
    while True:
        rows = lifecycle.queued_without_heartbeat_since(since, after_id=after_id, limit=CHUNK)
        if not rows:
            return requeued
        missing = queue.missing_jobs(redis, [job_id for _, job_id in rows if job_id])
        requeued += lifecycle.requeue_lost([(gid, job_id) for gid, job_id in rows if not job_id or job_id in missing])
        after_id = rows[-1][0]


def _resume_if_balance_allows(app: Flask) -> bool:
    """While paused, ask the API for the balance: a key that works and credits left resume the queue."""
    app_services = services(app)
    redis = app_services.require_redis()
    if app_services.stability is None or not queue.paused_reason(redis):
        return False
    try:
        credits = app_services.stability.balance()
    except GenerationError as exc:
        log.info("queue stays paused: %s", exc.reason)
        return False
    if credits <= 0:
        return False
    log.warning("queue resumed: the account has %.1f credits", credits)
    return queue.resume(redis)


class Housekeeper(threading.Thread):
    """A worker process's background thread: heartbeats for its jobs in flight, and the reaper's sweep."""

    def __init__(self, app: Flask) -> None:
        super().__init__(name="housekeeper", daemon=True)
        self.app = app
        self.stopped = threading.Event()
        config = app.config
        self.interval = config["REAPER_INTERVAL_SECONDS"]
        # Several heartbeats per stale period, so one slow database round trip never looks like a death.
        self.tick = min(self.interval, config["REAPER_STALE_SECONDS"] / 4)

    def run(self) -> None:
        """Beat and sweep until stopped; no error ends the thread."""
        next_sweep = time.monotonic()
        while not self.stopped.is_set():
            with self.app.app_context():
                self._safely(lambda: lifecycle.heartbeat(services(self.app).in_flight.job_ids()))
                self._safely(self._say_alive)
                if time.monotonic() >= next_sweep:
                    self._safely(lambda: sweep(self.app))
                    next_sweep = time.monotonic() + self.interval
            self.stopped.wait(self.tick)

    def _safely(self, step) -> None:  # noqa: ANN001
        """Run one step; a database or Redis outage is logged and tried again next tick."""
        try:
            step()
        except Exception:
            log.exception("housekeeping step failed; trying again in %.0f s", self.tick)
        try:
            # Nothing left open for the app context's teardown, which would raise on a dropped connection.
            statements.release()
        except Exception:
            log.exception("housekeeping could not release its database connection")

    def _say_alive(self) -> None:
        """The process's own heartbeat, for /readyz (RQ's is silent while a job runs)."""
        redis = services(self.app).redis
        if redis is not None:
            queue.worker_alive(redis, f"{socket.gethostname()}:{os.getpid()}")

    def stop(self) -> None:
        """Ask the thread to end after its current step."""
        self.stopped.set()
