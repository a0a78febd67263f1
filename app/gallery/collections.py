"""Collection pages: the list, a new collection, its settings, adding and removing the selection, its ZIP."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from app.accounts import ownership
from app.curation import collections
from app.curation.collections import VISIBILITIES, VISIBILITY_LABELS, CollectionError
from app.curation.share_links import EXPIRY_LABELS
from app.media.archive import selection_zip_response
from app.models import Collection
from app.services import services
from app.text.wording import count_of

bp = Blueprint("collections", __name__)


@bp.app_context_processor
def labels() -> dict[str, object]:
    """The words pages use for a collection's visibility and a share link's expiry, and whether an image is the
    viewer's own (a shared collection's tiles offer its other members no Reuse, Delete or batch link)."""
    return {"visibility_labels": VISIBILITY_LABELS, "expiry_labels": EXPIRY_LABELS, "owns": ownership.owns}


def _gallery_of(collection: Collection) -> str:
    return url_for("gallery.index", collection=collection.id)


def _owned_or_404(collection_id: int) -> Collection:
    """A collection the user may rename and delete: their own (an admin: any)."""
    collection = ownership.collection_or_404(collection_id)
    if not ownership.owns(collection.owner_id):
        abort(404)
    return collection


@bp.get("/collections/")
def index() -> str:
    """Your collections and the ones the team shares, each with its cover and count; a form for a new one."""
    return render_template("gallery/collections.html", summaries=collections.summaries(ownership.collection_visible()),
                           errors={}, form=MultiDict())


@bp.post("/collections/")
def create() -> Response | str:
    """Make an empty collection, then show it."""
    try:
        collection = collections.create_collection(current_user, request.form.get("name", ""),
                                                   request.form.get("visibility", "private"))
    except CollectionError as exc:
        return render_template("gallery/collections.html", errors={"name": str(exc)}, form=request.form,
                               summaries=collections.summaries(ownership.collection_visible())), 422
    flash(f"Collection “{collection.name}” made.")
    return redirect(_gallery_of(collection), code=303)


@bp.get("/collections/<int:collection_id>")
def show(collection_id: int) -> Response:
    """A collection is the gallery narrowed to it (with its search, sort and infinite scroll)."""
    return redirect(_gallery_of(ownership.collection_or_404(collection_id)))


@bp.get("/collections/<int:collection_id>/settings")
def edit(collection_id: int) -> str:
    """Rename, share with the team or not, choose the cover, or delete."""
    collection = _owned_or_404(collection_id)
    return render_template("gallery/collection_settings.html", collection=collection, errors={},
                           images=collections.images_of(collection.id), visibilities=VISIBILITIES)


@bp.post("/collections/<int:collection_id>/settings")
def update(collection_id: int) -> Response | str:
    """Save the name, visibility and cover."""
    collection = _owned_or_404(collection_id)
    cover = request.form.get("cover_id", "")
    try:
        collections.update_collection(collection, name=request.form.get("name", ""),
                                      visibility=request.form.get("visibility", collection.visibility),
                                      cover_id=int(cover) if cover.isdecimal() and len(cover) < 11 else None)
    except CollectionError as exc:
        return render_template("gallery/collection_settings.html", collection=collection, errors={"name": str(exc)},
                               images=collections.images_of(collection.id), visibilities=VISIBILITIES), 422
    flash("Collection saved.")
    return redirect(_gallery_of(collection), code=303)


@bp.post("/collections/<int:collection_id>/delete")
def delete(collection_id: int) -> Response:
    """Delete the collection (and its share links); no image is deleted."""
    collection = _owned_or_404(collection_id)
    name = collection.name
    collections.delete_collection(collection)
    flash(f"Collection “{name}” deleted; its images are still in your gallery.")
    return redirect(url_for("collections.index"), code=303)


def _selected_ids() -> list[int]:
    """The ticked ids of the form (or query), as CollectionError or a 404 for one that is not an id."""
    values = request.form if request.method == "POST" else request.args
    try:
        return collections.parse_ids(values.getlist("ids"))
    except LookupError:
        abort(404)


def _target() -> Collection:
    """The collection the selection goes to: an editable one by id, or a new one of the user's by name."""
    values = request.form if request.method == "POST" else request.args
    raw = values.get("collection_id", "")
    if raw:
        collection = ownership.collection_or_404(int(raw) if raw.isdecimal() and len(raw) < 11 else 0)
        if not ownership.may_edit_collection(collection):
            abort(404)
        return collection
    return collections.create_collection(current_user, values.get("new_name", ""))


def _announce(message: str, location: str | None = None) -> Response | str:
    """Tell an htmx caller what happened (or send it on); a plain form goes back with a message."""
    if request.headers.get("HX-Request"):
        if location:
            flash(message)
            return Response(status=204, headers={"HX-Redirect": location})
        return render_template("gallery/_announcement.html", announcement=message)
    flash(message)
    return redirect(location or request.referrer or url_for("gallery.index"), code=303)


@bp.get("/collections/add")
def confirm_add() -> str | Response:
    """Without JavaScript: ask before adding the ticked images (or removing them, with remove=1)."""
    try:
        ids = _selected_ids()
    except CollectionError as exc:
        flash(str(exc))
        return redirect(url_for("gallery.index"), code=303)
    raw = request.args.get("collection_id", "")
    collection = ownership.collection_or_404(int(raw)) if raw.isdecimal() and len(raw) < 11 else None
    return render_template("gallery/confirm_collect.html", ids=ids, collection=collection,
                           new_name=request.args.get("new_name", ""), remove=request.args.get("remove") == "1")


@bp.post("/collections/add")
def add() -> Response | str:
    """Put the ticked images in a collection (a new one when no collection is chosen)."""
    try:
        ids = _selected_ids()
        collections.require_viewable(ids)  # before a new collection is made for them
        new = not request.form.get("collection_id")
        collection = _target()
        added = collections.add_images(collection, ids, current_user)
    except CollectionError as exc:
        return _announce(str(exc))
    except LookupError:
        abort(404)
    message = f"Added {count_of(added, 'image')} to “{collection.name}”."
    return _announce(message, _gallery_of(collection) if new else None)


@bp.post("/collections/<int:collection_id>/remove")
def remove(collection_id: int) -> Response | str:
    """Take the ticked images out of the collection (they stay in the gallery)."""
    collection = ownership.collection_or_404(collection_id)
    if not ownership.may_edit_collection(collection):
        abort(404)
    try:
        removed = collections.remove_images(collection, _selected_ids())
    except CollectionError as exc:
        return _announce(str(exc))
    return _announce(f"Removed {count_of(removed, 'image')} from “{collection.name}”.", _gallery_of(collection))


@bp.get("/collections/<int:collection_id>/images.zip")
def download(collection_id: int) -> Response:
    """Every image of the collection in one ZIP, streamed as it is built."""
    collection = ownership.collection_or_404(collection_id)
    return selection_zip_response(collections.images_of(collection.id), services().stores)
