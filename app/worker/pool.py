"""The worker side: WORKER_PROCESSES processes, each running up to its share of WORKER_CONCURRENCY jobs in threads.

A generation is almost all waiting on the API, so a slot is a thread, not a process: one process holds
dozens of jobs in flight for the memory of one. Each process is an RQ worker whose main loop takes a
job only when one of its slots is free, and hands it to a thread with an app context (and so a database
session) of its own. RQ's WorkerPool starts the processes and restarts any that die.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from flask import Flask
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue, Worker, worker_registration
from rq.exceptions import StopRequested
from rq.executions import Execution
from rq.job import Job
from rq.timeouts import BaseDeathPenalty
from rq.worker import DequeueStrategy
from rq.worker_pool import WorkerPool

from app.extensions import db
from app.generations import lifecycle, queue, reaper, statements
from app.logs import configure_logging
from app.services import rebuild_after_fork, services, slots_per_process
from app.worker.jobs import put_back_in_line
from app.worker.malloc import release_free_memory, tune_for_workers
from app.worker.retries import retry

# One malloc arena per process: the slots mostly wait, and the large allocations (answers, decoded images) are few
# at a time (app/worker/slots.py). Each arena keeps its own peak of reused buffers, so a second arena only adds
# memory (docs/architecture.md has the measurements).
MALLOC_ARENAS = 1
log = logging.getLogger(__name__)
PAUSE_POLL_SECONDS = 2.0
# What a Redis outage raises. RQ's work loop survives it only while waiting for a job: anywhere else
# (after a job, in its maintenance, on the way out) the worker would quit, and the pool would respawn
# workers that die again until Redis is back.
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError)
REDIS_RETRY_MAX_SECONDS = 5.0
# How long an idle worker blocks on its queues before looking for new ones. A user's first job also wakes the
# workers (queue.wake_workers); this is for a wake that went missing (Redis restarted, a token expired).
DEQUEUE_SECONDS = 2
# A signal repeated within this time is the same Ctrl-C (the terminal's and the pool's), not a second press.
REPEAT_SIGNAL_SECONDS = 0.5
JOB_HEARTBEAT_SECONDS = 30
# RQ's own INFO lines are its bookkeeping, several per job ("Job OK", "result is kept for …"); app.worker.jobs
# writes one line per finished image instead.
RQ_LOG_LEVEL = "WARNING"


@contextmanager
def outage_tolerated(step: str) -> Iterator[None]:
    """Log a Redis outage during one of RQ's bookkeeping steps instead of letting it end the worker."""
    try:
        yield
    except REDIS_DOWN as exc:
        log.warning("%s skipped: Redis unavailable (%s)", step, exc)


def wait_for_redis(connection: Redis) -> None:
    """Block until Redis answers, retrying with backoff: a worker started during an outage waits, not dies."""
    def waiting(_attempt: int, exc: Exception, delay: float) -> None:
        log.warning("Redis unavailable (%s); the worker starts when it answers (next try in %.0f s)", exc, delay)

    retry(lambda _attempt: connection.ping(), attempts=None, retry_if=lambda exc: isinstance(exc, REDIS_DOWN),
          base=1.0, cap=REDIS_RETRY_MAX_SECONDS, jitter=False, before_wait=waiting)


class ThreadsKeepTime(BaseDeathPenalty):
    """No alarm: a thread cannot be interrupted, so each job keeps its own deadline (HTTP timeouts, checks)."""

    def setup_death_penalty(self) -> None:
        """Nothing to arm."""

    def cancel_death_penalty(self) -> None:
        """Nothing to disarm."""


class GenerationWorker(Worker):
    """An RQ worker running up to `slots` jobs at once in threads, taking turns between users' queues.

    It overrides methods of RQ's work loop that RQ does not document as extension points (dequeue, execute,
    heartbeat, signal handling, teardown), which is why requirements.txt pins RQ to one exact release.
    """

    death_penalty_class = ThreadsKeepTime
    app: Flask  # set on the class by bound_worker_class, so pool children (forked) inherit it
    # RQ doubles its wait after each failed dequeue up to 60 s; a Redis back after a short outage should
    # not leave the workers asleep for up to a minute more.
    max_connection_wait_time = REDIS_RETRY_MAX_SECONDS

    def __init__(self, queues: list[Queue | str], *args, app: Flask | None = None,  # noqa: ANN002, ANN003
                 slots: int | None = None, **kwargs) -> None:
        if kwargs.get("connection") is not None:
            wait_for_redis(kwargs["connection"])  # RQ's constructor already talks to Redis
        # Whatever queues the caller built (RQ's pool builds plain ones), the worker's are wakeable.
        kwargs["queue_class"] = queue.WakeableQueue
        super().__init__([getattr(q, "name", q) for q in queues], *args, **kwargs)
        if app is not None:
            self.app = app
        self.slots = slots or slots_per_process(self.app.config)
        self.housekeeper: reaper.Housekeeper | None = None
        self._free = threading.BoundedSemaphore(self.slots)
        self._running: dict[str, tuple[Job, Execution]] = {}
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._first_signal = 0.0
        self._force = False
        self._last_job_heartbeat = 0.0
        self._in_dequeue = False

    # --- the main loop ----------------------------------------------------------------------------

    @property
    def dequeue_timeout(self) -> int:
        """Block briefly, so a new user's queue is listened to within seconds even if its wake is lost."""
        return DEQUEUE_SECONDS

    def work(self, *args, **kwargs) -> bool:  # noqa: ANN002, ANN003
        """Run with an app context (RQ's failure callbacks write to the database) and a housekeeping thread."""
        # Turns between users: after a job from a user's queue, that queue goes last (RQ's round robin).
        kwargs.setdefault("dequeue_strategy", DequeueStrategy.ROUND_ROBIN)
        self._executor = ThreadPoolExecutor(self.slots, thread_name_prefix="generation")
        if not kwargs.get("burst"):
            self.housekeeper = reaper.Housekeeper(self.app)
            self.housekeeper.start()
        try:
            with self.app.app_context():
                return super().work(*args, **kwargs)
        finally:
            if self.housekeeper is not None:
                self.housekeeper.stop()

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):  # noqa: ANN001, ANN201
        """Take a job only with a slot free and the queue not paused; in burst mode, drain what is in flight too."""
        while not self._free.acquire(timeout=1):
            self.heartbeat()
            if self._stop_requested:
                return None
        result = self._dequeue_unless_paused(timeout, max_idle_time)
        if result is None and timeout is None and self._running:
            # Burst mode: a job in flight may still queue another (a pause, a requeue); wait, then look again.
            self._free.release()
            self._wait_for_running(None)
            return self.dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        if result is None:
            self._free.release()
        return result

    def _dequeue_unless_paused(self, timeout, max_idle_time):  # noqa: ANN001, ANN202
        """RQ's dequeue, again after each wake (a new user's queue), unless paused or stopping."""
        while self._wait_out_pause(timeout):
            self._in_dequeue = True
            try:
                result = super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
            except StopRequested:
                return None
            finally:
                self._in_dequeue = False
            # Blocking, RQ ends its wait with None only for a wake token (queue.WakeableQueue); its last
            # heartbeat has already refreshed the queues, so the next wait watches the new one.
            if result is not None or timeout is None or max_idle_time is not None:
                return result
        return None

    def _wait_out_pause(self, timeout: int | None) -> bool:
        """The jobs wait in Redis while the API refuses the account; False: do not dequeue (stopping, or burst)."""
        redis = services(self.app).redis
        while queue.paused_reason(redis) and not self._stop_requested:
            if timeout is None:  # burst mode: nothing to do now
                return False
            self.heartbeat()
            time.sleep(PAUSE_POLL_SECONDS)
        return not self._stop_requested

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Hand the job to a free thread and return at once (the slot was taken before dequeueing)."""
        try:
            execution = self.prepare_execution(job)
        except REDIS_DOWN as exc:
            # The row, not Redis, holds the outcome; one the job never got to is queued again.
            log.warning("Redis unavailable before job %s (%s)", job.id, exc)
            with self.app.app_context():
                put_back_in_line(job)
            self._free.release()
            return
        with self._lock:
            self._running[job.id] = (job, execution)
        assert self._executor is not None
        self._executor.submit(self._perform, job, queue, execution)

    def _perform(self, job: Job, queue: Queue, execution: Execution) -> None:
        """One job in its thread, with an app context (a database session) of its own."""
        try:
            with self.app.app_context():
                try:
                    self.perform_job(job, queue, execution)
                finally:
                    # Nothing left open for the context's teardown, which would raise on a dropped connection.
                    statements.release()
        except REDIS_DOWN as exc:
            log.warning("Redis unavailable around job %s (%s); its row holds the outcome", job.id, exc)
            with self.app.app_context():
                put_back_in_line(job)
        except Exception:
            log.exception("job %s: RQ bookkeeping failed", job.id)
        finally:
            with self._lock:
                self._running.pop(job.id, None)
                idle = not self._running
            self._free.release()
            if idle:
                # The images' buffers are kept for reuse while jobs run; once none does, the system gets them back.
                release_free_memory()

    def heartbeat(self, timeout=None, pipeline=None) -> None:  # noqa: ANN001
        """RQ beats before every dequeue attempt: the moment to re-register after an empty Redis restart, pick up
        new queues and renew the running jobs'."""
        with outage_tolerated("worker heartbeat"):
            # Membership, not the key: RQ's own state writes recreate a bare key after an empty restart.
            if pipeline is None and self.birth_date is not None and not self.connection.sismember(
                    self.redis_workers_keys, self.key):
                self._register_again()
            super().heartbeat(timeout, pipeline)
        if threading.current_thread() is not threading.main_thread():
            return
        if self._in_dequeue and self._stop_requested:
            # RQ's dequeue loop waits again after every empty wait; its heartbeat is where we can leave it.
            raise StopRequested
        self.refresh_queues()
        self._renew_running_jobs()

    def _register_again(self) -> None:
        """Write this worker's record and registry entries again, so `rq info` and the dashboard see it."""
        log.warning("worker %s: Redis no longer knows this worker (restarted empty?); registering again", self.name)
        with self.connection.pipeline() as pipeline:
            pipeline.hset(self.key, mapping=self.serialize())
            worker_registration.register(self, pipeline)
            pipeline.expire(self.key, self.worker_ttl + 60)
            pipeline.execute()

    def set_state(self, state: str, pipeline=None) -> None:  # noqa: ANN001
        """RQ's idle/busy flag for dashboards; not worth ending the worker over."""
        with outage_tolerated("worker state"):
            super().set_state(state, pipeline)

    def check_for_suspension(self, burst: bool) -> None:
        """RQ's `rq suspend` check; during an outage the dequeue that follows waits for Redis instead."""
        with outage_tolerated("suspension check"):
            super().check_for_suspension(burst)

    def run_maintenance_tasks(self) -> None:
        """RQ's registry clean-up; during an outage it is simply done next time."""
        with outage_tolerated("registry clean-up"):
            super().run_maintenance_tasks()

    def _renew_running_jobs(self) -> None:
        """RQ takes a job whose heartbeat lapses for abandoned; renew the running ones' every half minute."""
        if time.monotonic() - self._last_job_heartbeat < JOB_HEARTBEAT_SECONDS:
            return
        self._last_job_heartbeat = time.monotonic()
        self._keep_scheduler()
        with self._lock:
            running = list(self._running.values())
        for job, execution in running:
            try:
                self.maintain_heartbeats(job, execution)
            except RedisError:
                log.warning("could not renew job %s's heartbeat in Redis", job.id)

    def _keep_scheduler(self) -> None:
        """Start RQ's scheduler (the async operations' polls) once its lock is free: RQ itself tries only every ten
        minutes, and a killed worker's lock expires a minute after its death."""
        scheduler = self.scheduler
        if scheduler is None or (scheduler._process is not None and scheduler._process.is_alive()):
            return
        with outage_tolerated("scheduler start"):
            scheduler.acquire_locks(auto_start=True)

    def refresh_queues(self) -> None:
        """Listen to every user's queue; new ones go first, since their users have had no turn yet."""
        try:
            names = queue.queue_names(self.connection, self.app.config["RQ_QUEUE_NAME"])
        except RedisError:
            return  # the dequeue that follows deals with the outage
        known = [q for q in self._ordered_queues if q.name in names]
        known_names = {q.name for q in known}
        new = [self.queue_class(name, connection=self.connection, serializer=self.serializer) for name in names
               if name not in known_names]
        if new or len(known) != len(self._ordered_queues):
            self._ordered_queues = new + known
            self.queues = sorted(self._ordered_queues, key=lambda q: q.name)

    # --- stopping ---------------------------------------------------------------------------------

    def _install_signal_handlers(self) -> None:
        """SIGTERM or SIGINT: stop taking jobs and let those in flight finish; a second SIGINT: stop now."""
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGTERM, self._on_stop_signal)

    def _on_stop_signal(self, signum: int, _frame: object) -> None:
        now = time.monotonic()
        if not self._stop_requested:
            self._stop_requested, self._first_signal = True, now
            log.info("worker %s: stopping; %d jobs in flight may finish within %.0f s", self.name,
                     len(self._running), self.app.config["WORKER_SHUTDOWN_GRACE"])
        elif signum == signal.SIGINT and now - self._first_signal > REPEAT_SIGNAL_SECONDS:
            self._force = True
            log.info("worker %s: stopping now", self.name)

    def teardown(self) -> None:
        """Before RQ forgets this worker: wait out the grace period, then put back in line what did not finish."""
        burst = self.housekeeper is None
        self._wait_for_running(None if burst else self.app.config["WORKER_SHUTDOWN_GRACE"])
        left = self._requeue_running()
        with outage_tolerated("worker sign-off"):
            super().teardown()
        if self._executor is not None:
            self._executor.shutdown(wait=False)
        if left:
            # Their threads may sit in an HTTP call for minutes; the rows are queued again, so leave now.
            logging.shutdown()
            os._exit(0)

    def _wait_for_running(self, grace: float | None) -> None:
        """Until nothing runs, the grace period ends, or a second Ctrl-C."""
        deadline = None if grace is None else time.monotonic() + grace
        while self._running and not self._force and (deadline is None or time.monotonic() < deadline):
            self.heartbeat()
            time.sleep(0.1)

    def _requeue_running(self) -> int:
        """Give every unfinished generation a new job id and queue it again (its thread's late result is discarded);
        return how many jobs were still running."""
        with self._lock:
            jobs = [job for job, _ in self._running.values()]
        # A generation's row is queued again here (a poll's too: the new job polls by the stored result id); an
        # account's deletion is resumed by the reaper.
        running = [(queue.row_job_id(job), job.args[0]) for job in jobs
                   if job.args and job.func_name in (queue.JOB_FUNCTION, queue.POLL_FUNCTION)]
        with self.app.app_context():
            for job_id, generation_id in running:
                try:
                    lifecycle.requeue_interrupted(int(generation_id), job_id)
                except Exception:
                    db.session.rollback()
                    log.exception("could not requeue generation %s; the reaper will", generation_id)
        if running:
            log.warning("worker %s: %d unfinished jobs queued again", self.name, len(running))
        return len(jobs)


class PoolWorker(GenerationWorker):
    """A worker forked by the pool: it first replaces the connections it inherited."""

    def work(self, *args, **kwargs) -> bool:  # noqa: ANN002, ANN003
        """Rebuild connections, then work."""
        rebuild_after_fork(self.app)
        return super().work(*args, **kwargs)


def bound_worker_class(app: Flask) -> type[GenerationWorker]:
    """A worker class that carries this app, for the pool's forked children."""
    return type("BoundPoolWorker", (PoolWorker,), {"app": app})


def main(app: Flask) -> None:
    """Sweep what a previous run left, then run WORKER_PROCESSES worker processes until stopped."""
    configure_logging(app.config["LOG_FORMAT"])
    tune_for_workers(MALLOC_ARENAS)
    with app.app_context():
        try:
            swept = reaper.sweep(app, force=True)
            if swept.changed:
                log.info("start-up sweep: %s", swept)
        except Exception:
            # The housekeeping threads sweep again every interval; starting is what matters now.
            db.session.rollback()
            log.exception("start-up sweep failed (has `flask db upgrade` been run?)")
        # Forked workers must not share the parent's database connections.
        db.session.remove()
        db.engine.dispose()
    app_services = services(app)
    log.info("%d worker processes × %d slots", app.config["WORKER_PROCESSES"], slots_per_process(app.config))
    # The pool's children log once before RQ applies the level; rq.worker starts at INFO of its own.
    for name in ("rq", "rq.worker"):
        logging.getLogger(name).setLevel(RQ_LOG_LEVEL)
    pool = WorkerPool(
        [app_services.require_queue()],
        connection=app_services.require_redis(),
        num_workers=app.config["WORKER_PROCESSES"],
        worker_class=bound_worker_class(app),
    )
    pool.start(logging_level=RQ_LOG_LEVEL)
