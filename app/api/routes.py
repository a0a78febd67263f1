"""The API's endpoints under /api/: thin views over the lifecycle, the gallery and the ownership rules."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from contextlib import closing
from typing import Any

from flask import abort, current_app, request, url_for
from flask_limiter.util import get_remote_address
from flask_login import current_user
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response

from app.accounts import deletion, ownership
from app.accounts.auth import accounts_mode, request_token
from app.api import bodies, idempotency
from app.api.errors import MESSAGES, ApiProblem
from app.api.openapi import ApiBlueprint
from app.api.queries import batch_page
from app.api.schemas import (
    EXPORT_ZIP,
    BatchPageSchema,
    BatchRequestSchema,
    BatchSchema,
    CanceledSchema,
    CollectionChangeSchema,
    CollectionListSchema,
    CollectionPatchSchema,
    CollectionRequestSchema,
    CollectionSchema,
    DeleteAccountSchema,
    DeletionSchema,
    DeliveryPageSchema,
    EditRequestSchema,
    EditsRequestSchema,
    ErrorSchema,
    GenerationSchema,
    IdempotencyHeaderSchema,
    ImageArgsSchema,
    ImageIdsSchema,
    ImagePageSchema,
    ImageSchema,
    MeSchema,
    NewWebhookSchema,
    PageArgsSchema,
    PreviewSchema,
    RatingSchema,
    ShareLinkListSchema,
    ShareLinkRequestSchema,
    ShareLinkSchema,
    UploadSchema,
    WebhookPageSchema,
    WebhookRequestSchema,
    WildcardListSchema,
    WildcardRequestSchema,
    WildcardSchema,
)
from app.batches.queries import generations_of
from app.curation import collections, marks, share_links
from app.extensions import csrf, db, limiter
from app.gallery.pages import MAX_CURSOR_MICROS, Cursor, GalleryFilter, gallery_page
from app.generations import edits, lifecycle, spending
from app.generations.uploads import store_upload
from app.imaging.uploads import UploadRefused
from app.media.deletion import delete_image
from app.media.export import export_response
from app.models import MAX_ID, Batch, Collection, Generation, ShareLink, WebhookEndpoint, WildcardList
from app.prompts.submission import Submission
from app.services import services
from app.variations import wildcards
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
def refuse_nameless_parameters() -> None:
    """A query parameter with no name (`?=x`) is no parameter the document offers: refused, not ignored."""
    if any(not name for name in request.args):
        raise ApiProblem(422, "validation_failed", "A query parameter has no name.", {"query": "Remove `=…` "
                         "without a name before it."})


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
    rating = None
    if raw.count("-") == 2:
        head, _, raw = raw.partition("-")
        rating = int(head)
    micros, _, ident = raw.partition("-")
    # Past the largest id or time a row can have, every row comes before it: the same as the largest.
    return Cursor(min(int(micros), MAX_CURSOR_MICROS), min(int(ident), MAX_ID), rating)


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
    return _idempotent(headers, lambda record: lifecycle.create_batch(
        current_user, submission.prompts, submission.options, before_commit=record,
        expected_credits=submission.expected_credits, **submission.batch_arguments()),
        webhook_url=submission.webhook_url)


def _idempotent(headers: dict[str, str], create: Callable[[Callable[[Batch], None]], object],
                webhook_url: str | None = None) -> Response:
    """Create a batch with `create(before_commit)` and answer 201 with it; with an Idempotency-Key, at most once per
    key and day (the same key again replays the first answer). A `webhook_url` is told when the batch completes."""
    key = headers.get("idempotency_key")
    if key is None:
        return _create(create, webhook_url=webhook_url)
    request_hash = idempotency.fingerprint(request.get_json(silent=True))
    idempotency.forget_expired()
    earlier = idempotency.earlier_answer(current_user.id, key, request_hash)
    if earlier is not None:
        return earlier
    try:
        return _create(create, remember=lambda status, body, location: idempotency.remember(
            current_user.id, key, request_hash, status, body, location), webhook_url=webhook_url)
    except IntegrityError:
        # The same key won a moment ago in a concurrent request; this one created nothing. Answer as it did.
        db.session.rollback()
        return idempotency.earlier_answer(current_user.id, key, request_hash) or abort(409)


def _create(create: Callable[[Callable[[Batch], None]], object], remember: Any = None,  # noqa: ANN401
            webhook_url: str | None = None) -> Response:
    """Create the batch (keeping its answer in the same transaction if asked to) and answer 201."""
    answer: dict[str, Any] = {}

    def record(batch: Batch) -> None:
        answer["body"] = BatchSchema().dump(bodies.batch_body(batch.id, batch.generations))
        if webhook_url:  # checked below before anything was reserved; kept with the batch
            answer["body"]["webhook_secret"] = webhook_endpoints.create(
                current_user, webhook_url, [BATCH_COMPLETED], batch_id=batch.id).secret
        answer["location"] = url_for("api.get_batch", batch_id=batch.id, _external=True)
        if remember is not None:
            remember(201, answer["body"], answer["location"])

    if webhook_url:
        try:
            webhook_endpoints.check_url(webhook_url)
        except webhook_endpoints.EndpointRefused as exc:
            raise ApiProblem(422, "validation_failed", str(exc), {"webhook_url": str(exc)}) from None
    try:
        create(record)
    except lifecycle.PriceChanged as exc:
        raise ApiProblem(409, "price_changed", f"The price changed: this batch costs {exc.credits:g} credits, not "
                         f"{exc.expected:g}; nothing was created or charged. Send expected_credits {exc.credits:g} "
                         "to confirm.", {"expected_credits": f"Now {exc.credits:g} credits."}) from None
    except spending.OverAllowance as exc:
        raise ApiProblem(402, "over_allowance", str(exc)) from None
    except edits.SourceNotFound:
        abort(404)
    except edits.EditRefused as exc:
        field = exc.field or ("image" if exc.source_id is None else "image_ids")
        message = exc.message if exc.source_id is None or exc.field else f"Image {exc.source_id}: {exc.message}"
        # Its own code: the fields were well-formed, the operation's rules or the image's size refused them.
        raise ApiProblem(422, "edit_refused", message, {field: message}) from None
    return idempotency.answer(201, answer["body"], answer["location"])


EDIT_ANSWERS = (
    (402, "Over the monthly allowance: nothing was created"),
    (404, "No such image of yours (or it has no file)"),
    (409, "It costs other than `expected_credits` (code `price_changed`): nothing was created or charged"),
    (422, "A field, or the image itself, outside what the operation takes (code `edit_refused`; the API's limits "
          "are checked before anything is spent): `fields` names it (`image` for the image)"),
)


def _edit_answers(view: Callable) -> Callable:
    """The error answers both edit endpoints document."""
    for status, description in EDIT_ANSWERS:
        view = bp.alt_response(status, schema=ErrorSchema, description=description)(view)
    return view


def _edit(headers: dict[str, str], source_ids: list[int], body: dict[str, Any]) -> Response:
    """Create the edit batch from the request's fields (the mask decoded from base64)."""
    params = {name: value for name, value in body.items()
              if name not in ("operation", "mask", "expected_credits", "image_ids")}
    mask = _mask(body.get("mask"))
    return _idempotent(headers, lambda record: edits.create_edit_batch(
        current_user, source_ids, body["operation"], params, mask, expected_credits=body.get("expected_credits"),
        before_commit=record))


def _mask(text: str | None) -> bytes | None:
    """The mask's PNG bytes, or a 422 naming the field."""
    if not text:
        return None
    try:
        return base64.b64decode(text.split(",", 1)[-1] if text.startswith("data:") else text, validate=True)
    except (binascii.Error, ValueError):
        raise ApiProblem(422, "validation_failed", MESSAGES[422], {"mask": "Not valid base64."}) from None


@bp.post("/images/<int:generation_id>/edits")
@bp.arguments(IdempotencyHeaderSchema, location="headers")
@bp.arguments(EditRequestSchema)
@bp.response(201, BatchSchema, headers={"Location": {"description": "The new batch", "schema": {"type": "string"}}})
@_edit_answers
def create_edit(headers: dict[str, str], body: dict[str, Any], generation_id: int) -> Response:
    """Make a new image from this one with an operation (upscale, inpaint, outpaint, …); fields are named as the
    Stability API names them. Answers like POST /api/batches, each generation with `operation` and `source_id`."""
    _image_or_404(generation_id)
    return _edit(headers, [generation_id], body)


@bp.post("/edits")
@bp.arguments(IdempotencyHeaderSchema, location="headers")
@bp.arguments(EditsRequestSchema)
@bp.response(201, BatchSchema, headers={"Location": {"description": "The new batch", "schema": {"type": "string"}}})
@_edit_answers
def create_edits(headers: dict[str, str], body: dict[str, Any]) -> Response:
    """One operation on several images of yours as one batch, one new image each (every image checked first:
    one refused and nothing is created or charged)."""
    return _edit(headers, body["image_ids"], body)
@bp.post("/batches/preview")
@bp.arguments(BatchRequestSchema)
@bp.response(200, PreviewSchema)
def preview_batch(submission: Submission) -> dict[str, Any]:
    """What POST /api/batches would make with this body (its prompts, images and credits), creating nothing."""
    plan = submission.plan
    return {"prompts": plan.distinct_prompts, "images": len(plan.images), "credits": plan.credits}


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
    """The gallery as /all/ shows it: newest first (or oldest, or by your rating), searchable by prompt, filtered by
    status, model, your stars and a collection."""
    filters = GalleryFilter.from_args({key: str(value) for key, value in args.items()},
                                      may_filter_owner=current_user.is_admin, viewer=current_user.id)
    visible = ownership.visible(Generation.owner_id)
    if filters.collection is not None:
        ownership.collection_or_404(filters.collection)
        visible = ownership.viewable()
    size = args.get("limit") or current_app.config["GALLERY_PAGE_SIZE"]
    page = gallery_page(_cursor(args.get("before")), size, filters, visible=visible)
    found = marks.marks_of([g.id for g in page.items], current_user.id)
    return {"items": [bodies.image_body(g, found[g.id]) for g in page.items],
            "next": str(page.next_cursor) if page.next_cursor else None}


@bp.get("/images/<int:generation_id>")
@bp.response(200, ImageSchema)
def get_image(generation_id: int) -> dict[str, Any]:
    """An image with everything it was made with, your star and rating, everyone's average, and its URLs.

    Yours, or one of a collection the team shares.
    """
    return _marked(_viewable_image_or_404(generation_id))


@bp.delete("/images/<int:generation_id>")
@bp.response(204)
def delete_image_view(generation_id: int) -> None:
    """Delete the image: its row, its file and thumbnail (and its batch, once empty)."""
    delete_image(_image_or_404(generation_id))


@bp.post("/uploads")
@bp.arguments(UploadSchema, location="files")
@bp.response(201, ImageSchema, headers={"Location": {"description": "The new image", "schema": {"type": "string"}}})
@bp.alt_response(413, schema=ErrorSchema, description="The body is larger than the 10 MiB file and its form")
@bp.alt_response(422, schema=ErrorSchema, description="Not a whole PNG, JPEG or WebP image within the limits (code "
                 "`upload_refused`; `fields.file` says why): nothing was written")
def create_upload(files: dict[str, Any]) -> Response:
    """Keep a picture of your own as an image ("upload", no credits) that every edit can start from."""
    unknown = sorted({*request.form, *request.files} - {"file"})
    if unknown:  # the schema reads the file parts alone: other fields are refused here, as the document says
        raise ApiProblem(422, "validation_failed", "Send only the file part.", dict.fromkeys(unknown, "Unknown field."))
    try:
        with closing(files["file"]) as sent:  # a large file is spooled to disk: closed now, not by the collector
            generation = store_upload(current_user, sent.read())
    except UploadRefused as exc:
        raise ApiProblem(422, "upload_refused", str(exc), {"file": str(exc)}) from None
    location = url_for("api.get_image", generation_id=generation.id, _external=True)
    return idempotency.answer(201, ImageSchema().dump(bodies.image_body(generation)), location)


def _wildcard_body(row: WildcardList) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "values": row.values, "shared": row.shared, "owner_id": row.owner_id,
            "mine": row.owner_id == current_user.id,
            "txt_url": url_for("variations.export", list_id=row.id, _external=True)}


def _saved(save: Any) -> WildcardList:  # noqa: ANN401
    """The list `save()` wrote, or its messages as a 422 (a name already taken: 409)."""
    try:
        return save()
    except wildcards.WildcardInvalid as exc:
        if "shared" in exc.fields:
            raise ApiProblem(403, "forbidden", exc.fields["shared"]) from None
        taken = "name" in exc.fields and "already have" in exc.fields["name"]
        raise ApiProblem(409 if taken else 422, "name_taken" if taken else "invalid", str(exc), exc.fields) from None


@bp.get("/wildcards")
@bp.response(200, WildcardListSchema)
def list_wildcards() -> dict[str, Any]:
    """Your wildcard lists by name, then the lists others shared with everyone."""
    rows = wildcards.own_lists(current_user) + wildcards.shared_lists(current_user)
    return {"items": [_wildcard_body(row) for row in rows]}


@bp.post("/wildcards")
@bp.arguments(WildcardRequestSchema)
@bp.response(201, WildcardSchema)
@bp.alt_response(403, schema=ErrorSchema, description="`shared` from a member: only admins share lists")
@bp.alt_response(409, schema=ErrorSchema, description="You already have a list of that name")
def create_wildcard(body: dict[str, Any]) -> dict[str, Any]:
    """Make a wildcard list; `__name__` in a template then stands for one of its values."""
    return _wildcard_body(_saved(lambda: wildcards.save(current_user, body["name"], body["values"], body["shared"])))


def _wildcard_or_404(list_id: int, change: bool = False) -> WildcardList:
    row = (wildcards.owned if change else wildcards.readable)(list_id, current_user) if list_id <= MAX_ID else None
    if row is None:
        abort(404)
    return row


@bp.get("/wildcards/<int:list_id>")
@bp.response(200, WildcardSchema)
def get_wildcard(list_id: int) -> dict[str, Any]:
    """One of your lists, or a shared one."""
    return _wildcard_body(_wildcard_or_404(list_id))


@bp.put("/wildcards/<int:list_id>")
@bp.arguments(WildcardRequestSchema)
@bp.response(200, WildcardSchema)
@bp.alt_response(403, schema=ErrorSchema, description="`shared` from a member: only admins share lists")
@bp.alt_response(409, schema=ErrorSchema, description="You already have another list of that name")
def put_wildcard(body: dict[str, Any], list_id: int) -> dict[str, Any]:
    """Replace one of your lists' name, values and sharing."""
    row = _wildcard_or_404(list_id, change=True)
    return _wildcard_body(_saved(lambda: wildcards.save(current_user, body["name"], body["values"], body["shared"],
                                                        existing=row)))


@bp.delete("/wildcards/<int:list_id>")
@bp.response(204)
def delete_wildcard(list_id: int) -> None:
    """Delete one of your lists."""
    wildcards.delete(_wildcard_or_404(list_id, change=True))


def _marked(generation: Generation) -> dict[str, Any]:
    """The image body with the caller's marks."""
    return bodies.image_body(generation, marks.marks_for(generation.id, current_user.id))


def _viewable_image_or_404(generation_id: int) -> Generation:
    """An image the caller may look at and rate: theirs, or one of a collection the team shares."""
    generation = ownership.viewable_generation_or_404(generation_id)
    if not generation.has_image:
        abort(404)
    return generation


@bp.put("/images/<int:generation_id>/star")
@bp.response(200, ImageSchema)
def star_image(generation_id: int) -> dict[str, Any]:
    """Star an image (yours, or one of a collection shared with you); starring twice is the same as once."""
    generation = _viewable_image_or_404(generation_id)
    marks.set_star(current_user.id, generation.id, True)
    return _marked(generation)


@bp.delete("/images/<int:generation_id>/star")
@bp.response(200, ImageSchema)
def unstar_image(generation_id: int) -> dict[str, Any]:
    """Take your star off an image."""
    generation = _viewable_image_or_404(generation_id)
    marks.set_star(current_user.id, generation.id, False)
    return _marked(generation)


@bp.put("/images/<int:generation_id>/rating")
@bp.arguments(RatingSchema)
@bp.response(200, ImageSchema)
def rate_image(body: dict[str, int], generation_id: int) -> dict[str, Any]:
    """Rate an image 1 to 5: your own rating, beside everyone else's (the body shows the average and count)."""
    generation = _viewable_image_or_404(generation_id)
    marks.set_rating(current_user.id, generation, body["rating"])
    return _marked(generation)


@bp.delete("/images/<int:generation_id>/rating")
@bp.response(200, ImageSchema)
def clear_rating(generation_id: int) -> dict[str, Any]:
    """Clear your rating of an image."""
    generation = _viewable_image_or_404(generation_id)
    marks.set_rating(current_user.id, generation, None)
    return _marked(generation)


def _collection_body(collection: Collection) -> dict[str, Any]:
    return bodies.collection_body(collections.summary(collection), ownership.may_edit_collection(collection))


def _owned_collection(collection_id: int) -> Collection:
    """A collection the caller may rename and delete; a shared one of someone else's is 403, a private one 404."""
    collection = ownership.collection_or_404(collection_id)
    if not ownership.owns(collection.owner_id):
        raise ApiProblem(403, "not_owner", "Only the collection's owner may change or delete it.")
    return collection


def _editable_collection(collection_id: int) -> Collection:
    """A collection the caller may add images to and remove them from."""
    collection = ownership.collection_or_404(collection_id)
    if not ownership.may_edit_collection(collection):
        raise ApiProblem(403, "view_only", "This collection is shared with you for viewing only.")
    return collection


def _collection_problem(exc: collections.CollectionError) -> ApiProblem:
    return ApiProblem(422, "invalid", str(exc), {"name": str(exc)})


@bp.get("/collections")
@bp.response(200, CollectionListSchema)
def list_collections() -> dict[str, Any]:
    """Your collections and the ones the team shares, by name."""
    return {"items": [bodies.collection_body(s, ownership.may_edit_collection(s.collection))
                      for s in collections.summaries(ownership.collection_visible())]}


@bp.post("/collections")
@bp.arguments(CollectionRequestSchema)
@bp.response(201, CollectionSchema)
def create_collection(body: dict[str, str]) -> dict[str, Any]:
    """Make an empty collection: private, or shared with the team as viewers (team-view) or editors (team-edit)."""
    try:
        collection = collections.create_collection(current_user, body["name"], body["visibility"])
    except collections.CollectionError as exc:
        raise _collection_problem(exc) from None
    return _collection_body(collection)


@bp.get("/collections/<int:collection_id>")
@bp.response(200, CollectionSchema)
def get_collection(collection_id: int) -> dict[str, Any]:
    """A collection; its images are GET /api/images?collection=ID."""
    return _collection_body(ownership.collection_or_404(collection_id))


@bp.patch("/collections/<int:collection_id>")
@bp.arguments(CollectionPatchSchema)
@bp.response(200, CollectionSchema)
@bp.alt_response(403, schema=ErrorSchema, description="Shared with you, but not yours")
def update_collection(body: dict[str, Any], collection_id: int) -> dict[str, Any]:
    """Rename it, change who sees it, or choose its cover (one of its images)."""
    collection = _owned_collection(collection_id)
    try:
        collections.update_collection(collection, name=body.get("name"), visibility=body.get("visibility"),
                                      cover_id=body.get("cover_id"))
    except collections.CollectionError as exc:
        raise ApiProblem(422, "invalid", str(exc)) from None
    return _collection_body(collection)


@bp.delete("/collections/<int:collection_id>")
@bp.response(204)
@bp.alt_response(403, schema=ErrorSchema, description="Shared with you, but not yours")
def delete_collection(collection_id: int) -> None:
    """Delete the collection and its share links; no image is deleted."""
    collections.delete_collection(_owned_collection(collection_id))


@bp.post("/collections/<int:collection_id>/images")
@bp.arguments(ImageIdsSchema)
@bp.response(200, CollectionChangeSchema)
@bp.alt_response(403, schema=ErrorSchema, description="Shared with you for viewing only")
def add_to_collection(body: dict[str, list[int]], collection_id: int) -> dict[str, Any]:
    """Add images you may see; one that is missing or someone else's makes it a 404 and adds nothing."""
    collection = _editable_collection(collection_id)
    try:
        changed = collections.add_images(collection, list(dict.fromkeys(body["image_ids"])), current_user)
    except LookupError:
        abort(404)
    return {"changed": changed, "collection": _collection_body(collection)}


@bp.delete("/collections/<int:collection_id>/images")
@bp.arguments(ImageIdsSchema)
@bp.response(200, CollectionChangeSchema)
@bp.alt_response(403, schema=ErrorSchema, description="Shared with you for viewing only")
def remove_from_collection(body: dict[str, list[int]], collection_id: int) -> dict[str, Any]:
    """Take images out of the collection (they stay in the gallery)."""
    collection = _editable_collection(collection_id)
    changed = collections.remove_images(collection, list(dict.fromkeys(body["image_ids"])))
    return {"changed": changed, "collection": _collection_body(collection)}


def _share_links_on() -> None:
    if not current_app.config["SHARE_LINKS"]:
        raise ApiProblem(404, "share_links_off", "Share links are turned off on this install (SHARE_LINKS=off).")


@bp.post("/share-links")
@bp.arguments(ShareLinkRequestSchema)
@bp.response(201, ShareLinkSchema)
def create_share_link(body: dict[str, Any]) -> dict[str, Any]:
    """A link that shows one of your images or collections signed out, until it expires or you revoke it.

    The answer's url holds the link's token; it is shown only here (the install keeps only its hash).
    """
    _share_links_on()
    target: dict[str, Any] = {}
    if "image_id" in body:
        target["generation"] = _image_or_404(body["image_id"])
    else:
        target["collection"] = _owned_collection(body["collection_id"])
    made = share_links.create_link(current_user, expires_in_days=body["expires_in_days"],
                                   show_owner=body["show_owner"], **target)
    return bodies.share_link_body(made.link, url_for("shared.page", token=made.token, _external=True))


@bp.get("/share-links")
@bp.response(200, ShareLinkListSchema)
def list_share_links() -> dict[str, Any]:
    """Your live share links, newest first (without their tokens, which only their answer to POST held)."""
    _share_links_on()
    return {"items": [bodies.share_link_body(link)
                      for link in share_links.live_links(ShareLink.owner_id == current_user.id)]}


@bp.delete("/share-links/<int:link_id>")
@bp.response(204)
def revoke_share_link(link_id: int) -> None:
    """Revoke a link: its page and files answer 404 from now on."""
    _share_links_on()
    link = share_links.link_or_none(link_id, ShareLink.owner_id == current_user.id)
    if link is None:
        abort(404)
    share_links.revoke(link)
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
