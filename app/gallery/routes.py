"""The gallery of every image made, newest first, searchable by prompt and filterable by status and model."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

import sqlalchemy as sa
from flask import Blueprint, current_app, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from app.accounts import ownership
from app.accounts.auth import accounts_mode
from app.accounts.users import list_users
from app.curation.collections import summaries
from app.curation.marks import marks_of
from app.gallery.pages import GALLERY_STATUSES, SORTS, Cursor, GalleryFilter, gallery_count, gallery_page
from app.gallery.selection import SelectionError, selected_images
from app.gallery.shapes import tile_shape
from app.media.archive import selection_zip_response
from app.media.deletion import delete_images
from app.models import Generation
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
                           sorts=SORTS, **_collections_context(filters), **context)


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
