"""The gallery of every image made, newest first, searchable by prompt and filterable by status and model."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from flask_login import current_user

from app.accounts import ownership
from app.accounts.auth import accounts_mode
from app.accounts.users import list_users
from app.gallery.pages import GALLERY_STATUSES, Cursor, GalleryFilter, gallery_page
from app.models import Generation
from app.providers.options import MODELS

bp = Blueprint("gallery", __name__)


@bp.get("/all/")
def index() -> str:
    """A page of images; 'Load more' appends the next page in place, or follows as a plain link."""
    is_admin = current_user.is_admin
    filters = GalleryFilter.from_args(request.args, may_filter_owner=is_admin)
    cursor = Cursor.parse(request.args.get("before", ""))
    page = gallery_page(cursor, current_app.config["GALLERY_PAGE_SIZE"], filters,
                        visible=ownership.visible(Generation.owner_id), with_owners=is_admin)
    # Admins see whose each image is, and may narrow the gallery to one person (only in accounts mode).
    show_owners = is_admin and accounts_mode()
    context = {"page": page, "filters": filters, "first_page": cursor is None, "show_owners": show_owners}
    if request.headers.get("HX-Request"):
        # "Load more" wants the next items; a changed search wants the whole result list.
        template = "gallery/_items.html" if cursor is not None else "gallery/_results.html"
        return render_template(template, **context)
    owners = list_users() if show_owners else []
    return render_template("gallery/index.html", statuses=GALLERY_STATUSES, models=MODELS.values(), owners=owners,
                           **context)
