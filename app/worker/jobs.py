"""Work done by RQ workers: make one generation's image (every state change goes through the lifecycle), and delete
an account."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from flask import Flask, current_app
from redis.exceptions import RedisError
from rq import get_current_job
from rq.timeouts import JobTimeoutException

from app import telemetry
from app.generations import edits, erasure, lifecycle, queue, statements
from app.generations.lifecycle import Claimed
from app.imaging.decoding import ImageInfo, decode_image, pixel_bytes
from app.imaging.errors import ImageError
from app.imaging.metadata import ImageParameters, embed_parameters, parameters_text
from app.imaging.sending import ready_to_send
from app.imaging.thumbnails import THUMBNAIL_LONG_SIDE, Thumbnail, make_thumbnail
from app.logs import job_context
from app.media_store import orphans
from app.media_store.base import FileMissing, MediaStore, StoreError, StoreUnavailable, new_file_name
from app.models import UNFINISHED, Status
from app.providers.base import EditRequest, GeneratedImage, GenerationError, GenerationRequest
from app.providers.operations import GENERATE, MAX_REQUEST_BYTES, OPERATIONS
from app.services import QueueUnavailable, services
from app.webhooks import delivery as webhook_delivery
from app.worker.retries import retry
from app.worker.slots import AnswerSlot, PixelWork

log = logging.getLogger(__name__)

TIMED_OUT = "This image took too long and was stopped; try again"
UNEXPECTED = "An unexpected error stopped this generation; it has been logged"
STORE_FAILED = "Could not store the image; try again"
WAITING = "waiting"  # an async operation sent (or still in progress): its next poll is scheduled
# Room left in the 10 MiB body for the text fields and the multipart framing.
BODY_MARGIN = 256 * 1024
MAX_SOURCE_BYTES = 64 * 1024 * 1024  # larger than any file the app stores; refused rather than read
# Answers that say the account, not this image, is the problem: pause the queue instead of failing it job by job.
PAUSING_STATUSES = {401: queue.PAUSED_BAD_KEY, 402: queue.PAUSED_OUT_OF_CREDITS}


def run_generation(generation_id: int) -> str:
    """RQ entry point (the worker provides the app context): make one row's image, return its final status."""
    job = get_current_job()
    job_id = job.id if job else None
    with job_context(generation_id, job_id):
        return generate(current_app._get_current_object(), generation_id, job_id)  # type: ignore[attr-defined]


def run_account_deletion(user_id: int) -> str:
    """RQ entry point: delete what is left of an account marked for deletion (a job that died is queued again)."""
    erased = erasure.run(user_id)
    log.info("account %s: %d images and %d files deleted (%d files wait for their store)%s", user_id,
             erased.images, erased.files, erased.waiting, "; the account is gone" if erased.done else "")
    return "deleted" if erased.done else "not being deleted"


def run_result_poll(generation_id: int, row_job_id: str | None) -> str:
    """RQ entry point, scheduled by the job that sent an async operation: poll its result once."""
    with job_context(generation_id, row_job_id):
        return poll_result(current_app._get_current_object(), generation_id, row_job_id)  # type: ignore[attr-defined]


def run_webhook_delivery(delivery_id: int) -> str:
    """RQ entry point: one attempt of one webhook delivery (the job carries its id; the secret stays in the row)."""
    return webhook_delivery.deliver(delivery_id)


def generate(app: Flask, generation_id: int, job_id: str | None = None) -> str:
    """Claim the row, call the provider, store the result; every exit leaves the row final, queued again, or (an
    async operation) waiting for its next poll."""
    app_services = services(app)
    if queue.paused_reason(app_services.redis):
        # Taken from the queue just as it paused: back in line, untouched.
        lifecycle.requeue(generation_id, job_id, note=None)
        return "paused"
    generation = lifecycle.claim(generation_id, job_id)
    if generation is None:
        return "skipped"
    return _work(app, generation, job_id)


def poll_result(app: Flask, generation_id: int, job_id: str | None) -> str:
    """Poll a waiting async operation (its heartbeat beaten first): store the image, or schedule the next poll."""
    generation = lifecycle.resume_waiting(generation_id, job_id)
    if generation is None:
        return "skipped"  # canceled, finished, or taken over by the reaper under a new job meanwhile
    return _work(app, generation, job_id)


def _work(app: Flask, generation: Claimed, job_id: str | None) -> str:
    """Make (or fetch) the row's image and store it; the row ends final, queued again, or waiting."""
    app_services = services(app)
    generation_id = generation.id
    if job_id:
        app_services.in_flight.add(job_id, generation_id)
    claimed_at = time.monotonic()
    telemetry.IN_FLIGHT.inc()
    slot, recorded, detail = AnswerSlot(), None, None
    try:
        image, _attempt = _generate_with_retries(app, generation, job_id, slot)
        recorded = WAITING if image is None else _store(app, generation, image, job_id)
    except GenerationError as exc:
        detail = _handle_failure(app, generation, job_id, exc)
    except StoreError as exc:
        statements.release()
        lifecycle.fail(generation_id, job_id, STORE_FAILED)
        detail = f"the image could not be stored ({exc})"
    except JobTimeoutException:
        statements.release()
        lifecycle.fail(generation_id, job_id, TIMED_OUT)
        detail = "timed out"
    except Exception:
        # Anything unforeseen still ends the row; the traceback goes to the log, not the page.
        statements.release()
        log.exception("generation %s crashed", generation_id)
        lifecycle.fail(generation_id, job_id, UNEXPECTED)
        detail = "crashed"
    finally:
        slot.give_back()
        telemetry.IN_FLIGHT.dec()
        if job_id:
            app_services.in_flight.discard(job_id)
    if recorded == WAITING:
        # No slot is held while the API works: the next poll is a job of its own, scheduled.
        _poll_later(app, generation_id, job_id)
        return WAITING
    # The usual ending recorded its own status; any other is read back, as a cancel may have come first.
    status = recorded or lifecycle.status_of(generation_id) or "missing"
    if status not in UNFINISHED:
        seconds = time.monotonic() - claimed_at
        telemetry.JOB_DURATION.observe(seconds)
        telemetry.GENERATIONS_FINISHED.labels(status).inc()
        _log_outcome(generation_id, status, seconds, detail)
    return status


def _poll_later(app: Flask, generation_id: int, job_id: str | None) -> None:
    """Schedule the next poll; without Redis the row's heartbeat goes quiet and the reaper has it polled again."""
    try:
        queue.schedule_poll(services(app).require_redis(), app.config["RQ_QUEUE_NAME"], generation_id, job_id,
                            app.config["STABILITY_RESULT_POLL_SECONDS"])
    except (RedisError, QueueUnavailable) as exc:
        log.warning("generation %s: could not schedule its next poll (%s); the reaper will", generation_id, exc)


def _log_outcome(generation_id: int, status: str, seconds: float, detail: str | None) -> None:
    """The one line per finished image: a warning when it failed, with why."""
    level = logging.WARNING if status == Status.FAILED else logging.INFO
    log.log(level, "image %s %s in %.1f s%s", generation_id, status, seconds, f": {detail}" if detail else "")


def _handle_failure(app: Flask, generation: Claimed, job_id: str | None, exc: GenerationError) -> str | None:
    """Pause the queue for account-wide refusals (the row waits in line again); fail the row for anything else.

    Returns why the row failed, for the log, or None when it waits in line again.
    """
    pause_reason = PAUSING_STATUSES.get(exc.status_code or 0)
    redis = services(app).redis
    if pause_reason and redis is not None:
        queue.pause(redis, pause_reason)
        log.warning("queue paused: %s (generation %s)", pause_reason, generation.id)
        # The refused attempt cost nothing and does not count.
        attempt = exc.attempt or generation.attempts
        lifecycle.requeue(generation.id, job_id, note=pause_reason, attempts=max(0, attempt - 1))
        return None
    lifecycle.fail(generation.id, job_id, exc.reason, error_id=exc.error_id, request_id=exc.request_id)
    return f"{exc.reason} (api error id {exc.error_id})" if exc.error_id else exc.reason


def _generate_with_retries(app: Flask, generation: Claimed, job_id: str | None,
                           slot: AnswerSlot) -> tuple[GeneratedImage | None, int]:
    """Call the provider, retrying transient failures (429, 5xx, timeouts) with backoff; never permanent ones.

    Returns the image, read while holding `slot` (None: an async operation still in progress), and the attempt
    that made it. A thread cannot be stopped from outside, so the job keeps its own deadline: no attempt starts,
    and no backoff sleeps, past it.
    """
    make = _maker(app, generation, job_id)
    deadline = time.monotonic() + queue.job_timeout(app.config)
    # The claim began the first attempt (a row requeued after its worker stopped continues counting where that
    # worker left off); each retry begins its own.
    first, note = generation.attempts, generation.note

    def attempt_once(attempt: int) -> tuple[GeneratedImage | None, int]:
        if attempt > first:
            if time.monotonic() >= deadline:
                raise JobTimeoutException(f"generation {generation.id} passed its deadline")
            # Conditional, like every write of this job: a card canceled meanwhile keeps its own state.
            if not lifecycle.begin_attempt(generation.id, job_id, attempt, note):
                raise GenerationError("Canceled")  # fail() will not touch the canceled row either
        try:
            image = make()
            if image is None:
                return None, attempt
            slot.take(image.size_hint or 0)
            image.read()  # now, inside the try: an answer that breaks off is retried like any transient failure
            return image, attempt
        except GenerationError as exc:
            slot.give_back()
            exc.attempt = attempt
            raise

    def before_wait(attempt: int, exc: Exception, delay: float) -> None:
        nonlocal note
        if time.monotonic() + delay >= deadline:
            raise exc
        log.info("generation %s attempt %d/%d failed (%s); retrying in %.1f s", generation.id,
                 attempt, generation.max_attempts, exc, delay)
        note = f"{exc} (retrying)"

    return retry(attempt_once, attempts=range(first, max(first, generation.max_attempts) + 1),
                 retry_if=lambda exc: isinstance(exc, GenerationError) and exc.transient,
                 base=app.config["STABILITY_RETRY_BASE_DELAY"], before_wait=before_wait)


def _maker(app: Flask, generation: Claimed, job_id: str | None) -> Callable[[], GeneratedImage | None]:
    """What one attempt calls: generate from text; do a sync operation; send an async one (recording its result
    id, then None: poll later) or, once sent, poll it (None while in progress)."""
    provider = services(app).provider
    if generation.operation == GENERATE:
        request = GenerationRequest(prompt=generation.prompt, options=generation.options)
        return lambda: provider.generate(request)
    operation = OPERATIONS[generation.operation]
    if not (operation.is_async and provider.supports_async):
        return lambda: provider.edit(_edit_request(app, generation))
    sent = {"result_id": generation.result_id}

    def send_or_poll() -> GeneratedImage | None:
        if sent["result_id"] is not None:
            return provider.edit_result(sent["result_id"])
        result_id = provider.start_edit(_edit_request(app, generation))
        sent["result_id"] = result_id
        if not lifecycle.await_result(generation.id, job_id, result_id):
            raise GenerationError("Canceled")  # fail() leaves a canceled row alone
        return None
    return send_or_poll


def _edit_request(app: Flask, generation: Claimed) -> EditRequest:
    """The operation's request: the source file read from its store (fitted and re-encoded to the endpoint's
    limits and the 10 MiB body), the mask and the style image."""
    operation = OPERATIONS[generation.operation]
    stores = services(app).stores
    params = dict(generation.operation_params or {})
    source = edits.source_file(generation.source_id)
    if source is None:
        raise GenerationError("The image this was to be made from was deleted")
    mask = _read(stores.get(generation.storage), generation.mask_name) if generation.mask_name else None
    room = MAX_REQUEST_BYTES - BODY_MARGIN - len(mask or b"")
    style, style_type = None, None
    try:
        if operation.name == "style-transfer":
            style_file = edits.source_file(params.pop("style_image", None))
            if style_file is None:
                raise GenerationError("The style image was deleted")
            style_data = _read(stores.get(style_file.storage), style_file.file_name)
            with PixelWork(2 * pixel_bytes(style_data)):
                style, style_type = ready_to_send(style_data, style_file.mime_type, None, room // 2)
            del style_data
            room -= len(style)
        size = edits.fitted_size(operation, source.width, source.height) if operation.shrink_to_fit else None
        data = _read(stores.get(source.storage), source.file_name)
        with PixelWork(2 * pixel_bytes(data)):
            image, image_type = ready_to_send(data, source.mime_type, size, room)
        del data
    except ImageError as exc:
        raise GenerationError(exc.reason) from exc
    params.pop("style_image", None)
    return EditRequest(operation=operation.name, prompt=generation.prompt, options=generation.options,
                       params=params, image=image, image_type=image_type, mask=mask, style_image=style,
                       style_type=style_type)


def _read(store: MediaStore, name: str) -> bytes:
    """A stored file whole, in one buffer of its size (no growing copies); a missing file fails the row, an
    unreachable store is worth another attempt."""
    try:
        stored = store.open(name)
    except FileMissing:
        raise GenerationError("The image's file is missing from the store") from None
    except StoreError as exc:
        raise GenerationError(f"Could not read the image from the store ({exc})", transient=True) from None
    if stored.size > MAX_SOURCE_BYTES:
        stored.close()
        raise GenerationError("The image is too large to send")
    buffer = bytearray(stored.size)
    view, filled = memoryview(buffer), 0
    try:
        for chunk in stored.chunks():
            view[filled:filled + len(chunk)] = chunk
            filled += len(chunk)
    except (StoreError, OSError, ValueError) as exc:
        raise GenerationError(f"Could not read the image from the store ({exc})", transient=True) from None
    return buffer  # type: ignore[return-value]  # bytes-like: Pillow and requests take it as it is


def _checked_thumbnail(data: bytes) -> tuple[ImageInfo, Thumbnail]:
    """Decode the image once for its checks and its thumbnail, a few at a time; the pixels are freed on return."""
    with PixelWork(2 * pixel_bytes(data)):
        decoded = decode_image(data, long_side=THUMBNAIL_LONG_SIDE)
        info, thumbnail = decoded.info, make_thumbnail(decoded.image)
        del decoded  # the pixels go before the next decode may start, not when this frame ends
    return info, thumbnail


def _store(app: Flask, generation: Claimed, image: GeneratedImage, job_id: str | None) -> str | None:
    """Check and write the image and its thumbnail, then record them; a filtered (blurred) result is kept, marked.

    Returns the status recorded, or None if the row was no longer this job's to finish (canceled meanwhile).
    """
    try:
        info, thumbnail = _checked_thumbnail(image.read())
    except ImageError as exc:
        # The request id: support needs it most when the answer was unusable.
        raise GenerationError(exc.reason, request_id=image.request_id) from exc
    # The prompt and settings travel inside the file, as AUTOMATIC1111 writes them, without re-encoding.
    made_from = generation.operation != GENERATE
    data = embed_parameters(image.read(), info.mime_type, parameters_text(ImageParameters(
        prompt=generation.prompt, options=generation.options, seed=image.seed, width=info.width,
        height=info.height, operation=generation.operation if made_from else None,
        source_id=generation.source_id if made_from else None)))
    image.content = None  # the file with its metadata is the one copy kept from here on
    app_services = services(app)
    store = app_services.stores.current
    file_name, thumb_name = new_file_name(info.mime_type), new_file_name(thumbnail.mime_type)
    filtered = image.is_filtered
    outcome = {
        "file_name": file_name, "mime_type": info.mime_type, "byte_size": len(data), "storage": store.name,
        "width": info.width, "height": info.height, "seed": image.seed, "finish_reason": image.finish_reason,
        "thumb_name": thumb_name, "thumb_width": thumbnail.width, "thumb_height": thumbnail.height,
        # A transient error an earlier attempt met is no longer the story once an image arrived.
        "error": "Blurred by the API's content filter" if filtered else None,
        "api_request_id": image.request_id,
    }
    stored = False
    try:
        _put_with_retries(app, generation.id, store, file_name, data, info.mime_type)
        _put_with_retries(app, generation.id, store, thumb_name, thumbnail.data, thumbnail.mime_type)
        stored = lifecycle.finish(generation.id, job_id, filtered, **outcome)
        if stored:
            telemetry.CREDITS_SPENT.labels(generation.options.model).inc(
                lifecycle.price_of(generation.options, generation.operation))
            return Status.FILTERED if filtered else Status.SUCCEEDED
        return None
    finally:
        if not stored:
            # Canceled meanwhile, or a write failed: no file may outlive the attempt without a row. Both names,
            # since a PUT that timed out may still have landed; what the store refuses now goes later.
            orphans.discard(app_services.stores, app_services.redis, store.name, [file_name, thumb_name])


def _put_with_retries(app: Flask, generation_id: int, store: MediaStore, name: str, data: bytes,
                      content_type: str) -> None:
    """Store one file, retrying an unreachable or failing store with backoff (a refusal is not retried)."""
    attempts = app.config["MEDIA_STORE_ATTEMPTS"]

    def waiting(attempt: int, exc: Exception, delay: float) -> None:
        log.info("generation %s: storing attempt %d/%d failed (%s); retrying in %.1f s", generation_id,
                 attempt, attempts, exc, delay)

    retry(lambda _attempt: store.put(name, data, content_type), attempts=range(1, attempts + 1),
          retry_if=lambda exc: isinstance(exc, StoreUnavailable), base=app.config["MEDIA_STORE_RETRY_BASE_DELAY"],
          before_wait=waiting)


def put_back_in_line(job) -> bool:  # noqa: ANN001
    """Queue a job's row again under a new job id if it is still unfinished under this one (its worker lost Redis);
    a waiting async row keeps its result id, so the new job polls it."""
    generation_id = job.args[0] if job.args else None
    if generation_id is None:
        return False
    try:
        return lifecycle.requeue(int(generation_id), queue.row_job_id(job), note=None)
    except Exception:
        # The database is unreachable too: the reaper finds the row stale or lost once both are back.
        statements.release()
        log.exception("could not put generation %s back in line", generation_id)
        return False


def on_job_failure(job, connection, exc_type, exc_value, traceback) -> None:  # noqa: ANN001
    """RQ failure callback, also run for jobs abandoned by a dead worker: never leave the row unfinished."""
    generation_id = job.args[0] if job.args else None
    if generation_id is None:
        return
    # Guarded by the job id: a row the reaper already requeued under a new job is left alone. RQ calls this
    # for jobs it believes abandoned (exc_type None); a row whose worker still beats for it is not.
    alive_since = None if exc_type else lifecycle.seconds_ago(current_app.config["REAPER_STALE_SECONDS"])
    if lifecycle.fail(int(generation_id), job.id, lifecycle.INTERRUPTED, silent_since=alive_since):
        log.warning("generation %s failed by RQ: %s", generation_id, exc_type.__name__ if exc_type else "?")
