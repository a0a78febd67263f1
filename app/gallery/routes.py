"""The gallery of every image made, newest first."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request

from app.gallery.pages import Cursor, gallery_page

bp = Blueprint("gallery", __name__)


@bp.get("/all/")
def index() -> str:
    """A page of images; 'Load more' appends the next page in place, or follows as a plain link."""
    cursor = Cursor.parse(request.args.get("before", ""))
    page = gallery_page(cursor, current_app.config["GALLERY_PAGE_SIZE"])
    if request.headers.get("HX-Request") and cursor is not None:
        return render_template("gallery/_items.html", page=page)
    return render_template("gallery/index.html", page=page, first_page=cursor is None)
