"""The worker through a Redis outage: it lives on, puts an unstarted row back in line, and registers again."""

from factories import make_batch
from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry
from rq import Worker
from rq.job import Job
from tests_support import rows

from app.processes.group import free_port
from app.services import services
from app.worker.pool import GenerationWorker


def worker_for(app) -> GenerationWorker:
    """A worker on the test app's queue, registered as RQ's work loop registers it."""
    app_services = services(app)
    worker = GenerationWorker([app_services.require_queue()], connection=app_services.require_redis(), app=app)
    worker.register_birth()
    return worker


def unreachable_redis() -> Redis:
    """A client for a port nobody listens on, failing at once."""
    return Redis(port=free_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), retries=0))


def test_a_job_whose_redis_vanished_puts_its_row_back_in_line_and_the_worker_lives_on(app, monkeypatch):
    _, (generation_id,) = make_batch(app, "a cat")
    (before,) = rows(app, [generation_id])
    job = Job.fetch(before.job_id, connection=services(app).redis)

    def redis_gone(self, job):
        raise RedisConnectionError("Connection refused")

    monkeypatch.setattr(Worker, "prepare_execution", redis_gone)
    worker = worker_for(app)
    worker._free.acquire()  # the slot the main loop takes before it hands a job over
    worker.execute_job(job, services(app).queue)  # RQ's loop would have quit on this
    assert worker._free.acquire(blocking=False)  # and the slot was given back
    (after,) = rows(app, [generation_id])
    assert after.status == "queued" and after.job_id != before.job_id  # the reaper enqueues it once Redis is back


def test_rq_bookkeeping_during_an_outage_does_not_end_the_worker(app):
    worker = worker_for(app)
    worker.connection = unreachable_redis()
    worker.heartbeat()
    worker.set_state("idle")
    worker.check_for_suspension(burst=False)
    worker.run_maintenance_tasks()
    worker.teardown()


def test_a_worker_registers_again_after_redis_restarted_empty(app):
    worker = worker_for(app)
    redis = services(app).redis
    redis.delete(worker.key, "rq:workers", f"rq:workers:{services(app).queue.name}")
    assert Worker.all(connection=redis) == []
    worker.set_state("idle")  # RQ writes its state first, recreating a bare record
    worker.heartbeat()
    assert [w.name for w in Worker.all(connection=redis)] == [worker.name]
    worker.register_death()


def test_every_rq_method_the_worker_overrides_exists_in_the_pinned_rq():
    """A new RQ release may rename what GenerationWorker overrides: the pin and this check go together."""
    import re
    from pathlib import Path

    import rq
    from rq import Worker

    from app.worker.pool import GenerationWorker

    pinned = re.search(r"^rq==(\S+)$", (Path(__file__).parent.parent / "requirements.txt").read_text(), re.M)
    assert pinned and rq.__version__ == pinned.group(1)
    ours = {name for name, value in vars(GenerationWorker).items() if callable(value) and not name.startswith("__")}
    overridden = {name for name in ours if hasattr(Worker, name)}
    assert {"_install_signal_handlers", "dequeue_job_and_maintain_ttl", "execute_job", "heartbeat",
            "teardown"} <= overridden


def test_the_wakeable_queue_overrides_what_the_pinned_rqs_dequeue_calls():
    """queue.WakeableQueue replaces the pops RQ's dequeue_any calls on its class: a new release may change both."""
    import inspect

    from rq import Queue

    from app.generations.queue import WakeableQueue

    for name in ("lpop", "lmove"):
        assert name in vars(WakeableQueue)
        assert inspect.signature(getattr(WakeableQueue, name)).parameters.keys() == \
            inspect.signature(getattr(Queue, name)).parameters.keys()
        assert f"cls.{name}(" in inspect.getsource(Queue.dequeue_any)
