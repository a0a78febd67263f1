"""Users, API tokens, batches and generations for tests, made the way the app makes them.

Every status change goes through app.generations.lifecycle, as a job, a person or the reaper brings it about:
a batch comes from create_batch, a running row was claimed by its job, a finished one was claimed and then
finished or failed. Times come from the lifecycle's own clock, set for the step (`at`, `started_at`,
`finished_at`), never written into the row afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from datetime import datetime
from unittest import mock

from conftest import drain
from tests_support import PASSWORD

from app.accounts.tokens import create_token
from app.accounts.users import create_user, local_user, require_user
from app.extensions import db
from app.generations import lifecycle
from app.models import Generation, Status
from app.providers.demo import DemoProvider
from app.providers.options import GenerationOptions


def make_user(app, email: str, *, admin: bool = False, monthly_credits: float | None = None,
              password: str | None = PASSWORD) -> int:
    """An account (no cap on its credits unless given); its id."""
    with app.app_context():
        return create_user(email, password=password, is_admin=admin, monthly_credits=monthly_credits).id


def make_token(app, email: str, name: str = "script", expires_days: int | None = None) -> str:
    """A new API token's secret for the account with this email."""
    with app.app_context():
        return create_token(require_user(email), name, expires_days).secret


@contextmanager
def lifecycle_clock(at: datetime | None) -> Iterator[None]:
    """The lifecycle's transitions inside take `at` as now (nothing changes when it is None)."""
    if at is None:
        yield
        return
    with mock.patch.object(lifecycle, "utcnow", lambda: at):
        yield


def make_batch(app, *prompts: str, owner_email: str | None = None, images_per_prompt: int = 1,
               enqueue: bool = True, at: datetime | None = None, **options) -> tuple[int, list[int]]:
    """A batch of these prompts from lifecycle.create_batch (the local user's, or owner_email's, reserving its
    cost), with GenerationOptions(**options); its id and its generations' ids, in order.

    Its jobs are in Redis. With enqueue=False they are not, and the app needs no Redis: the queued rows are
    committed as a process that stopped between the commit and the enqueue leaves them (the reaper finds them
    and enqueues them). `at` is the lifecycle's clock for the creation: created_at, and the heartbeat by which
    the reaper tells a lost job.
    """
    skip_enqueue = nullcontext() if enqueue else mock.patch.object(lifecycle, "enqueue", lambda *_, **__: 0)
    with app.test_request_context(), lifecycle_clock(at), skip_enqueue:
        owner = require_user(owner_email) if owner_email else local_user()
        batch = lifecycle.create_batch(owner, list(prompts), GenerationOptions(**options),
                                       images_per_prompt=images_per_prompt)
        return batch.id, [g.id for g in batch.generations]


FINAL_BY_FINISH = {Status.SUCCEEDED: False, Status.FILTERED: True}


def advance(app, generation_id: int, status: str, *, attempts: int = 1, started_at: datetime | None = None,
            finished_at: datetime | None = None, **outcome) -> None:
    """Bring a queued generation to `status` through the lifecycle's transitions, as its job or a person would.

    running: claimed by its job (then on attempt `attempts`, as a job's retries count them);
    succeeded or filtered: also finished with `outcome` (the columns a job records: file_name, width…);
    failed: also failed with outcome's error, api_error_id and api_request_id (refunding its reservation);
    canceled: canceled while still queued (refunded; to cancel a running one, advance it to running first).
    `started_at` is the clock for the claim (started_at, heartbeat_at), `finished_at` for the end.
    Fails the test if a transition does not apply (the row was not where this path expects it).
    """
    with app.app_context():
        job_id = db.session.get(Generation, generation_id).job_id
        if status == Status.CANCELED:
            assert not outcome and attempts == 1, "a queued row is canceled as it is"
            with lifecycle_clock(finished_at):
                assert lifecycle.cancel_generation(generation_id) == 1, f"generation {generation_id} is not queued"
            return
        if status not in (Status.RUNNING, Status.FAILED, *FINAL_BY_FINISH):
            raise ValueError(f"advance() brings a queued row to running, a final status or canceled, not {status!r}")
        with lifecycle_clock(started_at):
            assert lifecycle.claim(generation_id, job_id) is not None, f"generation {generation_id} is not queued"
            if attempts > 1:
                assert lifecycle.begin_attempt(generation_id, job_id, attempts, None)
        with lifecycle_clock(finished_at):
            if status in FINAL_BY_FINISH:
                assert lifecycle.finish(generation_id, job_id, FINAL_BY_FINISH[status], **outcome)
            elif status == Status.FAILED:
                assert lifecycle.fail(generation_id, job_id, outcome.pop("error", "failed"),
                                      error_id=outcome.pop("api_error_id", None),
                                      request_id=outcome.pop("api_request_id", None))
                assert not outcome, f"fail() records no {sorted(outcome)}"
            else:
                assert not outcome, "a running row has no outcome yet"


def make_images(app, *prompts: str, owner_email: str | None = None, filtered: bool = False,
                **options) -> tuple[int, list[int]]:
    """Images of these prompts in one batch (as make_batch), made by a real worker from the demo provider, their
    files in the store; the batch's id and the images' ids. filtered=True: each comes back blurred by the content
    filter, as Stability answers a prompt it blurs."""
    made = make_batch(app, *prompts, owner_email=owner_email, **options)
    real_generate = DemoProvider.generate
    blurred = mock.patch.object(DemoProvider, "generate", lambda self, request: replace(
        real_generate(self, request), finish_reason="CONTENT_FILTERED"))
    with blurred if filtered else nullcontext():
        drain(app)
    return made
