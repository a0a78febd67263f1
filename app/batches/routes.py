"""The live generate page, its poll endpoint, card actions and the batch ZIP (the JSON API is app/api/)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from app.accounts import ownership
from app.accounts.spending import OverAllowance
from app.batches.archive import batch_zip_response
from app.batches.progress import changed_since, progress_of, seen_signature
from app.batches.queries import generations_of
from app.generations import lifecycle
from app.models import Generation
from app.services import services

bp = Blueprint("batches", __name__)


def _generations_or_404(batch_id: int) -> list[Generation]:
    """A batch's generations the user may see; a batch always has at least one, so none means 404."""
    generations = generations_of(batch_id, ownership.visible(Generation.owner_id))
    if not generations:
        abort(404)
    return generations


@bp.get("/generate/<int:batch_id>")
def show(batch_id: int) -> str:
    """One card per prompt; htmx keeps them current until every one is final."""
    generations = _generations_or_404(batch_id)
    return render_template("batches/generate.html", batch_id=batch_id, created_at=generations[0].created_at,
                           generations=generations, progress=progress_of(generations),
                           seen=seen_signature(generations))


@bp.get("/generate/<int:batch_id>/status")
def status(batch_id: int) -> Response | str:
    """Poll target: 204 when nothing changed, else the summary plus the changed cards swapped out of band."""
    generations = _generations_or_404(batch_id)
    seen = request.args.get("seen", "")
    current = seen_signature(generations)
    if seen == current:
        return Response(status=204)
    return render_template("batches/_status.html", batch_id=batch_id, progress=progress_of(generations),
                           seen=current, changed=changed_since(generations, current, seen))


def _after_action(batch_id: int, message: str) -> Response | str:
    """htmx: the progress and every card, out of band (polling resumes if needed); else back to the page."""
    if request.headers.get("HX-Request"):
        generations = generations_of(batch_id, ownership.visible(Generation.owner_id))
        return render_template("batches/_status.html", batch_id=batch_id, progress=progress_of(generations),
                               seen=seen_signature(generations), changed=generations, progress_oob=True,
                               announcement=message)
    flash(message)
    return redirect(url_for("batches.show", batch_id=batch_id), code=303)


def _generation_or_404(generation_id: int) -> Generation:
    return ownership.generation_or_404(generation_id)


@bp.post("/generations/<int:generation_id>/cancel")
def cancel_generation(generation_id: int) -> Response | str:
    """Cancel one queued or running generation; a running one's late result is discarded."""
    generation = _generation_or_404(generation_id)
    canceled = lifecycle.cancel_generation(generation_id)
    return _after_action(generation.batch_id, "Canceled." if canceled else "That image had already finished.")


@bp.post("/generate/<int:batch_id>/cancel")
def cancel_batch(batch_id: int) -> Response | str:
    """Cancel every unfinished generation of the batch."""
    _generations_or_404(batch_id)
    count = lifecycle.cancel_batch(batch_id)
    return _after_action(batch_id, f"Canceled {count} image{'s' if count != 1 else ''}.")


@bp.post("/generations/<int:generation_id>/retry")
def retry_generation(generation_id: int) -> Response | str:
    """Queue a new attempt for a failed, filtered or canceled card, with the same options."""
    generation = _generation_or_404(generation_id)
    try:
        retried = lifecycle.retry(generation_id)
    except OverAllowance as exc:
        return _after_action(generation.batch_id, str(exc))
    return _after_action(generation.batch_id, "Queued again." if retried else "Only a failed, filtered or "
                         "canceled image can be retried.")


@bp.get("/generate/<int:batch_id>/images.zip")
def download_zip(batch_id: int) -> Response:
    """Every image of the batch in one ZIP, streamed as it is built."""
    generations = [g for g in _generations_or_404(batch_id) if g.has_image]
    if not generations:
        abort(404)
    return batch_zip_response(batch_id, generations, services().stores)
