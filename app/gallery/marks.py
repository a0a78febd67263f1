"""Starring and rating from a page: a form each on the tiles and the detail page, swapped in place by htmx."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request
from flask_login import current_user
from werkzeug.wrappers import Response

from app.accounts import ownership
from app.accounts.auth import safe_next
from app.curation.marks import RATINGS, marks_of, set_rating, set_star

bp = Blueprint("marks", __name__)


def _answer(generation_id: int) -> Response | str:
    """The marks block again for htmx, or back to the page the form was on."""
    if not request.headers.get("HX-Request"):
        return redirect(safe_next(request.form.get("next")), code=303)
    generation = ownership.viewable_generation_or_404(generation_id)
    return render_template("gallery/_marks.html", generation=generation,
                           marks=marks_of([generation_id], current_user.id),
                           rating_form=request.form.get("rating_form") == "1")


@bp.post("/images/<int:generation_id>/star")
def star(generation_id: int) -> Response | str:
    """Star (starred=1) or unstar (starred=0) an image you may see."""
    generation = ownership.viewable_generation_or_404(generation_id)
    if not generation.has_image:
        abort(404)
    set_star(current_user.id, generation.id, request.form.get("starred") != "0")
    return _answer(generation.id)


@bp.post("/images/<int:generation_id>/rating")
def rate(generation_id: int) -> Response | str:
    """Rate an image you may see 1 to 5 (0 clears your rating)."""
    generation = ownership.viewable_generation_or_404(generation_id)
    if not generation.has_image:
        abort(404)
    raw = request.form.get("rating", "")
    if raw not in {"0", *map(str, RATINGS)}:
        abort(400)
    set_rating(current_user.id, generation, int(raw) or None)
    return _answer(generation.id)
