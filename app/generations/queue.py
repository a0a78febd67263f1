"""The RQ side of a generation: its job (which carries only the row's id), cancelling jobs, the queue's pause,
waking the workers when a user's queue is new; and the job that deletes an account (carrying only the user's id)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta

from redis import Redis
from redis.exceptions import RedisError
from rq import Callback, Queue, Worker
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.utils import as_text

from app.media_store.s3 import CONNECT_TIMEOUT, READ_TIMEOUT
from app.providers.stability import RATE_LIMIT_WAIT
from app.services import LIMITER_OUTAGE_WAIT

log = logging.getLogger(__name__)
JOB_FUNCTION = "app.worker.jobs.run_generation"
# The poll of a waiting async operation's result: scheduled (RQ's scheduler), carrying the row's id and job id.
POLL_FUNCTION = "app.worker.jobs.run_result_poll"
POLL_TIMEOUT = 15 * 60  # one poll: a GET, and storing what it brings
FAILURE_CALLBACK = "app.worker.jobs.on_job_failure"
ACCOUNT_DELETION_FUNCTION = "app.worker.jobs.run_account_deletion"
# The deletion job's bookkeeping limit in RQ: the job keeps no deadline of its own, and a big account takes a while.
ACCOUNT_DELETION_TIMEOUT = 24 * 3600
PAUSE_KEY = "imagegen:queue-paused"
# Every queue jobs were put in: one per user, so workers can take turns between users (RQ's round robin).
QUEUES_KEY = "imagegen:queues"
# A worker blocks only on the queues it knows; a token here (a new queue's name) ends that wait at once.
WAKE_KEY = "imagegen:wake"
# A token matters only to a worker blocked at the moment it is pushed: any other refreshes its queues before it
# blocks again. Tokens nobody took (every slot busy, no worker running) go with the key.
WAKE_SECONDS = 10
PAUSED_OUT_OF_CREDITS = "Paused: the Stability account is out of credits"
PAUSED_BAD_KEY = "Paused: the Stability API rejected the API key"


def new_job_id() -> str:
    """A job id chosen before enqueueing, so the row holds it before any worker sees the job."""
    return uuid.uuid4().hex


def job_timeout(config: Mapping[str, object]) -> int:
    """Longer than every attempt's timeouts, backoffs and a lockout, so the job itself records why it ended."""
    connect, read = config["STABILITY_TIMEOUT"]  # type: ignore[misc]
    attempts = int(config["STABILITY_MAX_ATTEMPTS"])  # type: ignore[arg-type]
    # Each attempt may first wait for Redis and a rate-limit slot (a lockout included), then for the API.
    per_attempt = LIMITER_OUTAGE_WAIT + RATE_LIMIT_WAIT + connect + read
    backoffs = float(config["STABILITY_RETRY_BASE_DELAY"]) * (2 ** attempts)  # type: ignore[arg-type]
    return int(attempts * per_attempt + backoffs + store_budget(config) + 60)


def store_budget(config: Mapping[str, object]) -> float:
    """The longest storing the image and its thumbnail may take: every attempt timing out, and the backoffs."""
    attempts = int(config.get("MEDIA_STORE_ATTEMPTS", 3))  # type: ignore[call-overload]
    base = float(config.get("MEDIA_STORE_RETRY_BASE_DELAY", 1.0))  # type: ignore[arg-type]
    per_put = 2 * (CONNECT_TIMEOUT + READ_TIMEOUT)  # boto3 tries twice itself
    return 2 * (attempts * per_put + base * 2 ** attempts)


def queue_name(base: str, owner_id: int | None) -> str:
    """The queue of one user's jobs (rows from before accounts use the base queue)."""
    return f"{base}-u{owner_id}" if owner_id is not None else base


def queue_names(connection: Redis, base: str) -> list[str]:
    """Every queue a worker should listen to: the base queue and each user's."""
    names = {name.decode() for name in connection.smembers(QUEUES_KEY)}
    return sorted(names | {base})


def enqueue_job(connection: Redis, name: str, generation_id: int, job_id: str, timeout: int) -> None:
    """Queue the job that makes one generation's image in its owner's queue, under the id its row already holds."""
    new_queue = connection.sadd(QUEUES_KEY, name)
    Queue(name, connection=connection).enqueue_call(
        JOB_FUNCTION,
        args=(generation_id,),
        job_id=job_id,
        timeout=timeout,
        result_ttl=3600,
        failure_ttl=7 * 24 * 3600,
        description=f"generation {generation_id}",
        on_failure=Callback(FAILURE_CALLBACK),
    )
    if new_queue:
        wake_workers(connection, name)


def schedule_poll(connection: Redis, base: str, generation_id: int, job_id: str | None, delay: float) -> str:
    """Poll a waiting async operation's result in `delay` seconds (RQ's scheduler moves the job into the base queue,
    which every worker listens to, when it is due); the row's job id travels with it as the poll's guard."""
    poll_id = f"poll-{generation_id}-{uuid.uuid4().hex[:16]}"
    options = {"args": (generation_id, job_id), "job_id": poll_id, "job_timeout": POLL_TIMEOUT, "result_ttl": 600,
               "failure_ttl": 24 * 3600, "description": f"poll generation {generation_id}"}
    target = Queue(base, connection=connection)
    if delay <= 0:
        target.enqueue(POLL_FUNCTION, **options)
    else:
        target.enqueue_in(timedelta(seconds=delay), POLL_FUNCTION, **options)
    return poll_id


def row_job_id(job: Job) -> str | None:
    """The job id a job's row waits for: its own, or for a poll the id of the job that sent the request."""
    if job.func_name == POLL_FUNCTION and len(job.args) > 1:
        return job.args[1]
    return job.id


def wake_workers(connection: Redis, name: str) -> None:
    """One token per worker process, after the job: each blocked worker takes one, looks again and finds the job."""
    try:
        tokens = max(1, Worker.count(connection=connection))
        with connection.pipeline() as pipeline:
            pipeline.rpush(WAKE_KEY, *[name] * tokens)
            pipeline.expire(WAKE_KEY, WAKE_SECONDS)
            pipeline.execute()
    except RedisError as exc:
        # The job is queued: failing its row now would be wrong, and the workers' own look finds the queue.
        log.warning("could not wake the workers for queue %s (%s)", name, exc)


class WakeableQueue(Queue):
    """RQ's queue whose blocking pop watches the wake list too, after every queue (a job always goes first).

    A popped token ends RQ's wait as if nothing were queued (`dequeue_any` returns None); the worker then
    refreshes its queues and listens again. These override RQ's own classmethods, pinned with it.
    """

    @classmethod
    def lpop(cls, queue_keys: Sequence[str], timeout: int | None,
             connection: Redis | None = None) -> tuple | None:
        """RQ's BLPOP over the queues, and the wake list; a non-blocking pop (burst mode) is RQ's own."""
        if timeout is None:
            return super().lpop(queue_keys, timeout, connection=connection)
        result = super().lpop([*queue_keys, WAKE_KEY], timeout, connection=connection)
        return None if as_text(result[0]) == WAKE_KEY else result

    @classmethod
    def lmove(cls, connection: Redis, queue_key: str, timeout: int | None) -> tuple | None:
        """A worker's only queue: RQ's BLMOVE watches one list, so this pops from it and the wake list instead.

        RQ's move keeps a job on a list of its own until it starts, failing it there if its worker dies first.
        RQ itself pops whenever a worker listens to two queues or more, which ours do from a user's first job on
        (the base queue and that user's): only an install where no user queued anything yet loses the move."""
        if timeout is None:
            return super().lmove(connection, queue_key, timeout)
        return cls.lpop([queue_key], timeout, connection=connection)


def enqueue_account_deletion(connection: Redis, base: str, user_id: int) -> str:
    """Queue the job that deletes what is left of an account (in the base queue); return its job id."""
    job = Queue(base, connection=connection).enqueue_call(
        ACCOUNT_DELETION_FUNCTION,
        args=(user_id,),
        # A new id each time: a resumed deletion never shares its id with the job of a worker that died.
        job_id=f"account-deletion-{user_id}-{uuid.uuid4().hex[:12]}",
        timeout=ACCOUNT_DELETION_TIMEOUT,
        result_ttl=3600,
        failure_ttl=7 * 24 * 3600,
        description=f"delete account {user_id}",
    )
    return job.id


def forget_queue(connection: Redis, base: str, owner_id: int) -> None:
    """A deleted user's queue: no longer listened to, and gone from Redis."""
    name = queue_name(base, owner_id)
    connection.srem(QUEUES_KEY, name)
    Queue(name, connection=connection).delete(delete_jobs=True)


def cancel_jobs(connection: Redis | None, job_ids: Iterable[str]) -> None:
    """Take queued jobs out of Redis; a job already running finds its row canceled and discards its result."""
    if connection is None:
        return
    for job_id in job_ids:
        try:
            Job.fetch(job_id, connection=connection).cancel()
        except (NoSuchJobError, InvalidJobOperation, RedisError):
            pass  # the row is canceled either way; the job then skips or discards


def missing_jobs(connection: Redis, job_ids: list[str]) -> set[str]:
    """The job ids Redis holds no job for (lost with an emptied Redis, or never enqueued); one round trip."""
    pipeline = connection.pipeline(transaction=False)
    for job_id in job_ids:
        pipeline.exists(Job.key_for(job_id))
    return {job_id for job_id, exists in zip(job_ids, pipeline.execute(), strict=True) if not exists}


def pause(connection: Redis, reason: str) -> None:
    """Stop every worker taking jobs until resumed: the API refused the account, so each job would fail alike."""
    connection.set(PAUSE_KEY, reason)


def resume(connection: Redis) -> bool:
    """Let workers take jobs again; True if the queue was paused."""
    return bool(connection.delete(PAUSE_KEY))


def paused_reason(connection: Redis | None) -> str | None:
    """Why the queue is paused, or None (also when Redis cannot say: a banner is not worth an error)."""
    if connection is None:
        return None
    try:
        reason = connection.get(PAUSE_KEY)
    except RedisError:
        return None
    return reason.decode() if reason else None


WORKER_ALIVE_PREFIX = "imagegen:worker-alive:"
WORKER_ALIVE_SECONDS = 60


def worker_alive(connection: Redis, name: str) -> None:
    """Say this worker process is alive for the next minute (read by /readyz)."""
    connection.set(WORKER_ALIVE_PREFIX + name, "1", ex=WORKER_ALIVE_SECONDS)


def live_worker_count(connection: Redis) -> int:
    """How many worker processes said they were alive within the last minute."""
    return sum(1 for _ in connection.scan_iter(match=WORKER_ALIVE_PREFIX + "*", count=500))
