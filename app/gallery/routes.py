"""The gallery of every image made, newest first, searchable by prompt and filterable by status and model."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request

from app.gallery.pages import GALLERY_STATUSES, Cursor, GalleryFilter, gallery_page
from app.providers.options import MODELS

bp = Blueprint("gallery", __name__)


@bp.get("/all/")
def index() -> str:
    """A page of images; 'Load more' appends the next page in place, or follows as a plain link."""
    filters = GalleryFilter.from_args(request.args)
    cursor = Cursor.parse(request.args.get("before", ""))
    page = gallery_page(cursor, current_app.config["GALLERY_PAGE_SIZE"], filters)
    context = {"page": page, "filters": filters, "first_page": cursor is None}
    if request.headers.get("HX-Request"):
        # "Load more" wants the next items; a changed search wants the whole result list.
        template = "gallery/_items.html" if cursor is not None else "gallery/_results.html"
        return render_template(template, **context)
    return render_template("gallery/index.html", statuses=GALLERY_STATUSES, models=MODELS.values(), **context)
