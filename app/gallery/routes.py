"""The gallery of every image made, newest first, searchable by prompt and filterable by status and model."""

from __future__ import annotations

import math
from collections.abc import Mapping
from contextlib import closing
from urllib.parse import urlencode

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from app.accounts import ownership
from app.accounts.auth import accounts_mode
from app.accounts.users import list_users
from app.curation.collections import summaries
from app.curation.marks import marks_of
from app.gallery.pages import (
    GALLERY_OPERATIONS,
    GALLERY_STATUSES,
    SORTS,
    Cursor,
    GalleryFilter,
    gallery_count,
    gallery_page,
)
from app.gallery.selection import BULK_LABELS, SelectionError, bulk_operation, selected_images, shared_prompt
from app.gallery.shapes import tile_shape
from app.generations import spending
from app.generations.edits import VARY, EditRefused, SourceNotFound, create_edit_batch, price_of_edit
from app.generations.lifecycle import PriceChanged
from app.generations.uploads import store_upload
from app.imaging.uploads import UploadRefused
from app.media.archive import selection_zip_response
from app.media.deletion import delete_images
from app.models import Generation
from app.providers.operations import Operation
from app.providers.options import MODELS
from app.services import services
from app.text.wording import count_of

bp = Blueprint("gallery", __name__)
bp.add_app_template_filter(tile_shape)


def _filters(values: Mapping[str, str] | None = None) -> GalleryFilter:
    """The search in the query string (or in the form that carried it along)."""
    return GalleryFilter.from_args(request.args if values is None else values, may_filter_owner=current_user.is_admin,
                                   viewer=current_user.id)


def _visible(filters: GalleryFilter) -> sa.ColumnElement[bool]:
    """The user's own images; in one collection, also the images the team shares (404 for a collection not theirs)."""
    if filters.collection is None:
        return ownership.visible(Generation.owner_id)
    ownership.collection_or_404(filters.collection)
    return ownership.viewable()


def _count(filters: GalleryFilter) -> int:
    """How many of the user's images the search finds."""
    return gallery_count(filters, _visible(filters))


def _without_empty_parameters() -> str | None:
    """This address without the empty fields a cleared search sends (?q=&status=&model=); None when it has none."""
    given = list(request.args.items(multi=True))
    kept = [(name, value) for name, value in given if value]
    if len(kept) == len(given):
        return None
    return request.path + (f"?{urlencode(kept)}" if kept else "")


@bp.get("/all/")
def index() -> Response | str:
    """A page of images; 'Load more' appends the next page in place, or follows as a plain link."""
    bare = _without_empty_parameters()
    if bare is None:
        return _index()
    if not request.headers.get("HX-Request"):
        return redirect(bare, code=302)
    response = make_response(_index())
    response.headers["HX-Push-Url"] = bare  # what the address bar shows after an htmx search
    return response


def _index() -> str:
    """The gallery page, or the part of it an htmx request asks for."""
    is_admin = current_user.is_admin
    filters = _filters()
    cursor = Cursor.parse(request.args.get("before", ""))
    page = gallery_page(cursor, current_app.config["GALLERY_PAGE_SIZE"], filters,
                        visible=_visible(filters), with_owners=is_admin)
    # Admins see whose each image is, and may narrow the gallery to one person (only in accounts mode).
    show_owners = is_admin and accounts_mode()
    context = {"page": page, "filters": filters, "first_page": cursor is None, "show_owners": show_owners,
               "marks": marks_of([g.id for g in page.items], current_user.id)}
    if request.headers.get("HX-Request") and cursor is not None:
        return render_template("gallery/_items.html", **context)  # "Load more" wants only the next items
    context["count"] = _count(filters)
    if request.headers.get("HX-Request"):
        return render_template("gallery/_results.html", **context)  # a changed search wants the whole list
    owners = list_users() if show_owners else []
    return render_template("gallery/index.html", statuses=GALLERY_STATUSES, models=MODELS.values(), owners=owners,
                           operations=GALLERY_OPERATIONS, sorts=SORTS, **_collections_context(filters), **context)


def _collections_context(filters: GalleryFilter) -> dict[str, object]:
    """The collections the selection can go to, and the one shown (its header, its settings for the owner)."""
    listed = summaries(ownership.collection_visible())
    current = next((s for s in listed if s.collection.id == filters.collection), None)
    return {"editable_collections": [s.collection for s in listed if ownership.may_edit_collection(s.collection)],
            "current_collection": current,
            "may_edit": current is not None and ownership.may_edit_collection(current.collection),
            "owns_collection": current is not None and ownership.owns(current.collection.owner_id),
            "share_links_on": current_app.config["SHARE_LINKS"]}


def _back(filters: GalleryFilter, message: str) -> Response:
    """To the gallery, still searched as it was, with a message."""
    flash(message)
    return redirect(url_for("gallery.index", **filters.as_args()), code=303)


@bp.get("/all/delete")
def confirm_delete_selected() -> Response | str:
    """Ask before deleting the ticked images (the path without JavaScript; htmx asks with a dialog instead)."""
    filters = _filters()
    try:
        images = selected_images(request.args.getlist("ids"))
    except SelectionError as exc:
        return _back(filters, str(exc))
    return render_template("gallery/confirm_delete_selected.html", images=images, filters=filters)


@bp.post("/all/delete")
def delete_selected() -> Response | str:
    """Delete the ticked images (no refund: they were made); htmx removes their tiles and updates the count."""
    filters = _filters(request.form)
    try:
        images = selected_images(request.form.getlist("ids"))
    except SelectionError as exc:
        if request.headers.get("HX-Request"):
            return render_template("gallery/_deleted.html", deleted=[], count=None, announcement=str(exc))
        return _back(filters, str(exc))
    deleted = [image.id for image in images]
    delete_images(images)
    message = f"Deleted {count_of(len(deleted), 'image')}."
    if not request.headers.get("HX-Request"):
        return _back(filters, message)
    count = _count(filters)
    if count == 0:
        flash(message)
        return Response(status=200, headers={"HX-Refresh": "true"})  # the gallery's empty state says what next
    return render_template("gallery/_deleted.html", deleted=deleted, count=count, filters=filters,
                           announcement=message)


@bp.get("/all/images.zip")
def download_selected() -> Response:
    """The ticked images in one ZIP, streamed as it is built."""
    try:
        images = selected_images(request.args.getlist("ids"))
    except SelectionError as exc:
        return _back(_filters(), str(exc))
    return selection_zip_response(images, services().stores)


def _upload_form(error: str, status: int = 422) -> tuple[str, int]:
    """The upload form again with the reason under the picker: alone for htmx, else on its own page."""
    template = "gallery/_upload.html" if request.headers.get("HX-Request") else "gallery/upload.html"
    return render_template(template, upload_error=error), status


@bp.route("/all/upload", methods=["GET", "POST"])
def upload() -> Response | tuple[str, int] | str:
    """Keep a picture of your own as an image (free); then to its page, where every edit can start from it."""
    if request.method == "GET":
        return render_template("gallery/upload.html")
    sent = request.files.get("file")
    if sent is None or not sent.filename and not sent.content_length:
        return _upload_form("Choose a PNG, JPEG or WebP file first.")
    try:
        with closing(sent):  # a large file is spooled to disk: closed now, not when the collector finds it
            generation = store_upload(current_user, sent.read())
    except UploadRefused as exc:
        return _upload_form(str(exc))
    flash("Uploaded. Choose Edit to make something from it.")
    target = url_for("media.detail", generation_id=generation.id)
    if request.headers.get("HX-Request"):
        return Response(status=204, headers={"HX-Redirect": target})
    return redirect(target, code=303)


def _bulk_page(images: list[Generation], op: Operation, filters: GalleryFilter, prompt: str,
               error: str | None = None, status: int = 200) -> tuple[str, int]:
    """What the ticked images will have done, its price and the allowance, and the button that queues it."""
    params = {"prompt": prompt} if op.name == "image-to-image" else {}
    price = price_of_edit(op.name, params)
    return render_template("gallery/confirm_edit_selected.html", images=images, operation=op, filters=filters,
                           label=BULK_LABELS[op.name], prompt=prompt, price=price, credits=price * len(images),
                           allowance=spending.allowance(current_user), error=error), status


def _own(images: list[Generation]) -> list[Generation]:
    """The ticked images, each the user's own: an admin sees others' images, but spends only on their own."""
    if any(image.owner_id != current_user.id for image in images):
        raise SelectionError("Only your own images can be edited; untick the others.")
    return images


@bp.get("/all/edit")
def confirm_edit_selected() -> Response | tuple[str, int]:
    """The ticked images' operation, priced, before it is queued (one batch for all of them)."""
    filters = _filters()
    try:
        op = bulk_operation(request.args.get("operation", ""))
        images = _own(selected_images(request.args.getlist("ids")))
    except SelectionError as exc:
        return _back(filters, str(exc))
    return _bulk_page(images, op, filters, shared_prompt(images))


def _shown_price() -> float:
    """The price the confirm page showed; a missing or unreadable one is NaN, which no price equals."""
    try:
        return float(request.form.get("expected_credits", ""))
    except ValueError:
        return math.nan


@bp.post("/all/edit")
def edit_selected() -> Response | tuple[str, int]:
    """Queue one operation for every ticked image as one batch, then to its page where the cards arrive."""
    filters = _filters(request.form)
    try:
        op = bulk_operation(request.form.get("operation", ""))
        images = _own(selected_images(request.form.getlist("ids")))
    except SelectionError as exc:
        return _back(filters, str(exc))
    prompt = request.form.get("prompt", "")
    # Vary: a prompt typed here is every variation's; left empty, each image keeps its own (the shortcut's rule).
    operation, params = (VARY, {"prompt": prompt.strip()}) if op.name == "image-to-image" else (op.name, {})
    try:
        batch = create_edit_batch(current_user, [image.id for image in images], operation, params,
                                  expected_credits=_shown_price())
    except EditRefused as exc:
        return _bulk_page(images, op, filters, prompt, error=exc.message, status=422)
    except (PriceChanged, spending.OverAllowance) as exc:
        return _bulk_page(images, op, filters, prompt, error=str(exc), status=409)
    except SourceNotFound:
        abort(404)
    flash(f"{BULK_LABELS[op.name]}: {count_of(len(batch.generations), 'image')} queued.", "submitted")
    return redirect(url_for("batches.show", batch_id=batch.id), code=303)
