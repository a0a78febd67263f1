"""The API's endpoints under /api/: thin views over the lifecycle, the gallery and the ownership rules."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, request, url_for
from flask_limiter.util import get_remote_address
from flask_login import current_user
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response

from app.accounts import deletion, ownership
from app.accounts.auth import accounts_mode, request_token
from app.api import bodies, idempotency
from app.api.errors import ApiProblem
from app.api.openapi import ApiBlueprint
from app.api.queries import batch_page
from app.api.schemas import (
    EXPORT_ZIP,
    BatchPageSchema,
    BatchRequestSchema,
    BatchSchema,
    CanceledSchema,
    DeleteAccountSchema,
    DeletionSchema,
    DeliveryPageSchema,
    ErrorSchema,
    GenerationSchema,
    IdempotencyHeaderSchema,
    ImageArgsSchema,
    ImagePageSchema,
    ImageSchema,
    MeSchema,
    NewWebhookSchema,
    PageArgsSchema,
    WebhookPageSchema,
    WebhookRequestSchema,
)
from app.batches.queries import generations_of
from app.extensions import csrf, db, limiter
from app.gallery.pages import MAX_CURSOR_MICROS, Cursor, GalleryFilter, gallery_page
from app.generations import lifecycle, spending
from app.media.deletion import delete_image
from app.media.export import export_response
from app.models import MAX_ID, Batch, Generation, WebhookEndpoint
from app.prompts.submission import Submission
from app.services import services
from app.webhooks import endpoints as webhook_endpoints
from app.webhooks.bodies import BATCH_COMPLETED

bp = ApiBlueprint("api", __name__, url_prefix="/api", description="Batches, images, and who you are.")
csrf.exempt(bp)  # checked in check_csrf below: token requests need no CSRF token, cookie sessions do
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def _rate_limit() -> str:
    return current_app.config["API_RATE_LIMIT"]


def rate_limit_key() -> str:
    """Each token has its own budget; a session its user's, and AUTH_MODE=none its address's."""
    token = request_token() if current_user.is_authenticated else None
    if token is not None:
        return f"api-token:{token.id}"
    if accounts_mode() and current_user.is_authenticated:
        return f"api-user:{current_user.id}"
    return f"api-address:{get_remote_address()}"


# One budget per token across every endpoint (a plain limit would count each endpoint apart).
limiter.shared_limit(_rate_limit, scope="api", key_func=rate_limit_key)(bp)


def _from_another_site() -> bool:
    """A browser request started by another site's page (scripts send neither header)."""
    origin = request.headers.get("Origin")
    if origin and origin.rstrip("/") != request.host_url.rstrip("/"):
        return True
    return request.headers.get("Sec-Fetch-Site") == "cross-site"


@bp.before_request
def check_csrf() -> None:
    """A request riding on a browser session needs its CSRF token; one signed in with a token does not."""
    if request.method in SAFE_METHODS or (current_user.is_authenticated and request_token() is not None):
        return
    # AUTH_MODE=none: scripts send no token and no cookie; a browser brings the session cookie, or is cross-site.
    if current_app.config["SESSION_COOKIE_NAME"] in request.cookies or accounts_mode() or _from_another_site():
        csrf.protect()


def _generations_or_404(batch_id: int) -> list[Generation]:
    """A batch's generations the caller may see; none means the batch is missing or someone else's."""
    generations = generations_of(batch_id, ownership.visible(Generation.owner_id))
    if not generations:
        abort(404)
    return generations


def _image_or_404(generation_id: int) -> Generation:
    generation = ownership.generation_or_404(generation_id)
    if not generation.has_image:
        abort(404)
    return generation


def _cursor(raw: str | None) -> Cursor | None:
    """A `before` cursor (its pattern checked by the schema), or None for the first page.

    Any position is a place to page back from, even one no row has, so the numbers are not bounded further.
    """
    if raw is None:
        return None
    micros, _, ident = raw.partition("-")
    # Past the largest id or time a row can have, every row comes before it: the same as the largest.
    return Cursor(min(int(micros), MAX_CURSOR_MICROS), min(int(ident), MAX_ID))


@bp.get("/me")
@bp.response(200, MeSchema)
def me() -> dict[str, Any]:
    """Who you are, your role, and the credits you have used and have left this month."""
    allowance = spending.allowance(current_user)
    return {"id": current_user.id, "email": current_user.email,
            "role": "admin" if current_user.is_admin else "member", "auth_mode": current_app.config["AUTH_MODE"],
            "credits": {"month": spending.this_month(), "used": allowance.used, "limit": allowance.limit,
                        "left": allowance.left}}


@bp.delete("/me")
@bp.arguments(DeleteAccountSchema)
@bp.response(202, DeletionSchema)
@bp.alt_response(403, schema=ErrorSchema, description="Wrong password: nothing was removed")
@bp.alt_response(409, schema=ErrorSchema, description="The only admin, or AUTH_MODE=none: nothing was removed")
@bp.alt_response(429, schema=ErrorSchema, description="Five wrong passwords within 15 minutes")
def delete_me(body: dict[str, str]) -> dict[str, str]:
    """Delete your account and everything it made (images, files, batches, tokens, spend), given your password.

    You are signed out and every token refused at once; the files and rows go in the background, within minutes.
    """
    try:
        deletion.delete_own_account(current_user, body["password"])
    except deletion.DeletionRefused as exc:
        raise ApiProblem(exc.status, exc.code, str(exc)) from None
    return {"status": "deleting", "message": "Your account is being deleted; its images, files and every other row "
                                             "of it are removed within minutes."}


@bp.get("/export")
@bp.response(200, EXPORT_ZIP, content_type="application/zip",
             description="Streamed while it is built: read it to the end (a store failing midway cuts it short)")
def export() -> Response:
    """Everything you made as one ZIP: every image file, then manifest.json describing each generation.

    The manifest gives each generation's prompt, options (negative prompt, model, …), seeds requested and used,
    batch, status, attempts and times, and its file's name in the ZIP (null without one). Only your own images,
    admins included.
    """
    return export_response(current_user, services().stores)


@bp.post("/batches")
@bp.arguments(IdempotencyHeaderSchema, location="headers")
@bp.arguments(BatchRequestSchema)
@bp.response(201, BatchSchema, headers={"Location": {"description": "The new batch", "schema": {"type": "string"}}})
@bp.alt_response(402, schema=ErrorSchema, description="Over the monthly allowance: nothing was created")
@bp.alt_response(409, schema=ErrorSchema, description="The batch costs other than `expected_credits` (code "
                 "`price_changed`; the message names the current price): nothing was created or charged")
def create_batch(headers: dict[str, str], submission: Submission) -> Response:
    """Queue images_per_prompt images (default 1) of each prompt, as the home form does; with an Idempotency-Key,
    at most once per key and day."""
    key = headers.get("idempotency_key")
    if key is None:
        return _create(submission)
    request_hash = idempotency.fingerprint(request.get_json(silent=True))
    idempotency.forget_expired()
    earlier = idempotency.earlier_answer(current_user.id, key, request_hash)
    if earlier is not None:
        return earlier
    try:
        return _create(submission, remember=lambda status, body, location: idempotency.remember(
            current_user.id, key, request_hash, status, body, location))
    except IntegrityError:
        # The same key won a moment ago in a concurrent request; this one created nothing. Answer as it did.
        db.session.rollback()
        return idempotency.earlier_answer(current_user.id, key, request_hash) or abort(409)


def _create(submission: Submission, remember: Any = None) -> Response:  # noqa: ANN401
    """Create the batch (keeping its answer in the same transaction if asked to) and answer 201."""
    answer: dict[str, Any] = {}

    def record(batch: Batch) -> None:
        answer["body"] = BatchSchema().dump(bodies.batch_body(batch.id, batch.generations))
        if submission.webhook_url:  # checked below before anything was reserved; kept with the batch
            answer["body"]["webhook_secret"] = webhook_endpoints.create(
                current_user, submission.webhook_url, [BATCH_COMPLETED], batch_id=batch.id).secret
        answer["location"] = url_for("api.get_batch", batch_id=batch.id, _external=True)
        if remember is not None:
            remember(201, answer["body"], answer["location"])

    if submission.webhook_url:
        try:
            webhook_endpoints.check_url(submission.webhook_url)
        except webhook_endpoints.EndpointRefused as exc:
            raise ApiProblem(422, "validation_failed", str(exc), {"webhook_url": str(exc)}) from None
    try:
        lifecycle.create_batch(current_user, submission.prompts, submission.options, before_commit=record,
                               images_per_prompt=submission.images_per_prompt,
                               expected_credits=submission.expected_credits)
    except lifecycle.PriceChanged as exc:
        raise ApiProblem(409, "price_changed", f"The price changed: this batch costs {exc.credits:g} credits, not "
                         f"{exc.expected:g}; nothing was created or charged. Send expected_credits {exc.credits:g} "
                         "to confirm.", {"expected_credits": f"Now {exc.credits:g} credits."}) from None
    except spending.OverAllowance as exc:
        raise ApiProblem(402, "over_allowance", str(exc)) from None
    return idempotency.answer(201, answer["body"], answer["location"])


@bp.get("/batches")
@bp.arguments(PageArgsSchema, location="query")
@bp.response(200, BatchPageSchema)
def list_batches(args: dict[str, Any]) -> dict[str, Any]:
    """Your batches (everyone's for admins), newest first; pass `next` as `before` for the following page."""
    page = batch_page(_cursor(args.get("before")), args["limit"], ownership.visible(Batch.owner_id))
    return {"items": [bodies.batch_summary(row.batch, row.progress, row.finished_at) for row in page.items],
            "next": str(page.next_cursor) if page.next_cursor else None}


@bp.get("/batches/<int:batch_id>")
@bp.response(200, BatchSchema)
def get_batch(batch_id: int) -> dict[str, Any]:
    """A batch with its options, cost, times and every generation in prompt order."""
    return bodies.batch_body(batch_id, _generations_or_404(batch_id))


@bp.post("/batches/<int:batch_id>/cancel")
@bp.response(200, CanceledSchema)
def cancel_batch(batch_id: int) -> dict[str, Any]:
    """Cancel every queued or running generation of the batch (queued ones are refunded)."""
    _generations_or_404(batch_id)
    canceled = lifecycle.cancel_batch(batch_id)
    return {"canceled": canceled, "batch": bodies.batch_body(batch_id, _generations_or_404(batch_id))}


@bp.post("/generations/<int:generation_id>/cancel")
@bp.response(200, GenerationSchema)
@bp.alt_response(409, schema=ErrorSchema, description="Already finished")
def cancel_generation(generation_id: int) -> dict[str, Any]:
    """Cancel one queued or running generation; a running one's late result is discarded."""
    generation = ownership.generation_or_404(generation_id)
    if not lifecycle.cancel_generation(generation_id):
        raise ApiProblem(409, "already_finished", "This image had already finished; there is nothing to cancel.")
    return bodies.generation_body(generation)


@bp.post("/generations/<int:generation_id>/retry")
@bp.response(200, GenerationSchema)
@bp.alt_response(402, schema=ErrorSchema, description="Over the monthly allowance")
@bp.alt_response(409, schema=ErrorSchema, description="Not failed, filtered or canceled")
def retry_generation(generation_id: int) -> dict[str, Any]:
    """Queue a new attempt for a failed, filtered or canceled generation, with the same options."""
    generation = ownership.generation_or_404(generation_id)
    try:
        retried = lifecycle.retry(generation_id)
    except spending.OverAllowance as exc:
        raise ApiProblem(402, "over_allowance", str(exc)) from None
    if not retried:
        raise ApiProblem(409, "not_retryable", "Only a failed, filtered or canceled image can be retried.")
    return bodies.generation_body(generation)


@bp.get("/images")
@bp.arguments(ImageArgsSchema, location="query")
@bp.response(200, ImagePageSchema)
def list_images(args: dict[str, Any]) -> dict[str, Any]:
    """The gallery as /all/ shows it: newest first, searchable by prompt, filtered by status and model."""
    filters = GalleryFilter.from_args({key: str(value) for key, value in args.items()},
                                      may_filter_owner=current_user.is_admin)
    size = args.get("limit") or current_app.config["GALLERY_PAGE_SIZE"]
    page = gallery_page(_cursor(args.get("before")), size, filters, visible=ownership.visible(Generation.owner_id))
    return {"items": [bodies.image_body(g) for g in page.items],
            "next": str(page.next_cursor) if page.next_cursor else None}


@bp.get("/images/<int:generation_id>")
@bp.response(200, ImageSchema)
def get_image(generation_id: int) -> dict[str, Any]:
    """An image with everything it was made with, and URLs of its file, thumbnail and download."""
    return bodies.image_body(_image_or_404(generation_id))


@bp.delete("/images/<int:generation_id>")
@bp.response(204)
def delete_image_view(generation_id: int) -> None:
    """Delete the image: its row, its file and thumbnail (and its batch, once empty)."""
    delete_image(_image_or_404(generation_id))


def _webhook_body(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {"id": endpoint.id, "url": endpoint.url, "events": endpoint.events, "body_format": endpoint.body_format,
            "enabled": endpoint.enabled, "disabled_reason": endpoint.disabled_reason, "created_at": endpoint.created_at}


@bp.post("/webhooks")
@bp.arguments(WebhookRequestSchema)
@bp.response(201, NewWebhookSchema)
@bp.alt_response(409, schema=ErrorSchema, description="You have 20 endpoints already (code `too_many_endpoints`)")
def create_webhook(body: dict[str, Any]) -> dict[str, Any]:
    """Add an endpoint told about your batches, signed to the Standard Webhooks spec; its secret is in this answer
    only. Loopback, private, link-local and metadata addresses are refused (422)."""
    try:
        endpoint = webhook_endpoints.create(current_user, body["url"], body["events"], body["body_format"])
    except webhook_endpoints.EndpointRefused as exc:
        if exc.conflict:
            raise ApiProblem(409, "too_many_endpoints", str(exc)) from None
        raise ApiProblem(422, "validation_failed", str(exc), {exc.field: str(exc)}) from None
    return {**_webhook_body(endpoint), "secret": endpoint.secret}


@bp.get("/webhooks")
@bp.response(200, WebhookPageSchema)
def list_webhooks() -> dict[str, Any]:
    """Your endpoints, oldest first, without their secrets."""
    return {"items": [_webhook_body(endpoint) for endpoint in webhook_endpoints.of_user(current_user)]}


@bp.delete("/webhooks/<int:webhook_id>")
@bp.response(204)
def delete_webhook(webhook_id: int) -> None:
    """Remove an endpoint and its deliveries; nothing more is sent to it."""
    webhook_endpoints.remove(webhook_endpoints.owned(current_user, webhook_id) or abort(404))


@bp.get("/webhooks/<int:webhook_id>/deliveries")
@bp.response(200, DeliveryPageSchema)
def list_deliveries(webhook_id: int) -> dict[str, Any]:
    """The endpoint's latest 50 deliveries, newest first: status, attempts, the answer's status and when."""
    webhook_endpoints.owned(current_user, webhook_id) or abort(404)
    return {"items": [{"id": d.id, "event": d.event, "message_id": d.message_id, "status": d.status,
                       "attempts": d.attempts, "response_status": d.response_status, "error": d.error,
                       "created_at": d.created_at, "last_attempt_at": d.last_attempt_at,
                       "next_attempt_at": d.next_attempt_at}
                      for d in webhook_endpoints.deliveries(current_user, webhook_id)]}
